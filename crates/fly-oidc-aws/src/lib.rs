//! PLACEHOLDER: being written.
#![warn(missing_docs)]
