//! Cache entries read from disk (any bytes) decode or fail cleanly, never panic; whatever
//! decodes re-encodes to an entry that decodes to the same value.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/fly-oidc-cli/src/aws/format.rs"]
mod format;

#[allow(dead_code)]
#[path = "../../crates/fly-oidc-cli/src/disk_cache.rs"]
mod disk_cache;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = disk_cache::parse_entry::<format::AwsCredentials>(data) {
        let bytes = disk_cache::encode_entry(&entry.value, entry.expires_at).unwrap();
        let again = disk_cache::parse_entry::<format::AwsCredentials>(&bytes).unwrap();
        assert_eq!(again, entry);
    }
});
