//! Cache entries read from disk (any bytes) decode or fail cleanly, never panic; whatever
//! decodes re-encodes to an entry that decodes to the same value.
#![no_main]

use fly_oidc_aws::credential_process as format;
use fly_oidc_aws::fuzzing::{encode_entry, parse_entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = parse_entry::<format::AwsCredentials>(data) {
        let bytes = encode_entry(&entry.value, entry.expires_at).unwrap();
        let again = parse_entry::<format::AwsCredentials>(&bytes).unwrap();
        assert_eq!(again, entry);
    }
});
