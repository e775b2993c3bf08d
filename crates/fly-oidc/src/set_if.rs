//! [`SetIf`]: an optional setting onto a builder, one line each.

/// `set(builder, value)` when a value is given, else the builder as it is: how a front end
/// maps an optional flag or option field onto a builder method (every front end of the
/// workspace uses it, so a mapping reads the same everywhere).
///
/// ```
/// use fly_oidc::{FlyOidcClient, SetIf};
/// let audience: Option<&str> = None;
/// let builder = FlyOidcClient::builder().set_if(audience, |b, aud| b.audience(aud));
/// # let _ = builder;
/// ```
pub trait SetIf: Sized {
    /// `set(self, value)` when `value` is `Some`, else `self` unchanged.
    fn set_if<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(value) => set(self, value),
            None => self,
        }
    }
}

impl<B> SetIf for B {}
