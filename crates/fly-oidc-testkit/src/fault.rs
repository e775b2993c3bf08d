//! The one fault vocabulary of every fake, and the queue each fake takes its next fault from.

use crate::server::lock;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// A way for a fake's next request to fail: the same words for the fake Fly Machines API
/// ([`FakeFlyApi::fail_next`](crate::FakeFlyApi::fail_next)), the fake AWS STS
/// ([`FakeSts::fail_next`](crate::aws_sts::FakeSts::fail_next)) and the fake Google STS and
/// IAM Credentials ([`FakeGoogle::fail_next`](crate::google::FakeGoogle::fail_next)). Each fake
/// writes the fault in its service's own wire format (Fly's `{"error": ..}` JSON, STS's
/// `ErrorResponse` XML, Google's OAuth and API error JSON).
///
/// The associated functions such as [`Fault::access_denied`] build the errors AWS STS
/// answers `AssumeRoleWithWebIdentity` with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status and exactly this body (for example `500` and
    /// `{"error":"boom"}`).
    Status(u16, String),
    /// Answer with this status and the service's own error shape carrying `code` and
    /// `message`: STS's `ErrorResponse` (`Type`, `Code`, `Message`, `RequestId`); Google's
    /// OAuth error `{"error": code, "error_description": message}` at the token exchange and
    /// API error `{"error": {"code": status, "message": message, "status": code}}` at IAM
    /// Credentials; Fly's `{"error": message}`.
    Error {
        /// The HTTP status.
        status: u16,
        /// The error code, such as `InvalidIdentityToken` or `invalid_grant`.
        code: String,
        /// The message.
        message: String,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer 200 with a body the client cannot parse (not a JWT, not XML, not JSON).
    Malformed,
    /// Answer 200 with a 100 KiB body.
    Oversized,
    /// Send the status line and part of the body, then drop the connection.
    Reset,
    /// Answer with this status and an error that quotes what the request carried (the web
    /// identity token at STS; the `Authorization` header and the body at Google and Fly), as a
    /// misconfigured endpoint that echoes requests would: for checking that errors never show
    /// the tokens a request carried.
    Echo(u16),
}

impl Fault {
    /// [`Fault::Error`] with this status, code and message.
    pub fn error(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Fault::Error {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The faults queued for one endpoint of a fake: the i-th queued fault applies to the i-th
/// next request.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Mutex<VecDeque<Fault>>);

impl FaultQueue {
    /// Queue `fault` for the next `n` requests (after the faults already queued).
    pub(crate) fn push(&self, n: usize, fault: Fault) {
        lock(&self.0).extend(std::iter::repeat_n(fault, n));
    }

    /// Queue one fault per next request, in order.
    pub(crate) fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.0).extend(faults);
    }

    /// The fault for the request that just arrived, if any.
    pub(crate) fn pop(&self) -> Option<Fault> {
        lock(&self.0).pop_front()
    }

    /// Drop every queued fault.
    pub(crate) fn clear(&self) {
        lock(&self.0).clear();
    }
}
