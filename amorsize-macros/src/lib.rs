//! The `#[amorsize::parallel]` attribute. Use it through the `amorsize` crate, whose
//! documentation describes the accepted shapes and options; this crate only parses,
//! validates and generates code that calls `::amorsize::__private`.

mod attr;
mod expand;
mod forward;
mod signature;
mod types;
mod valid;

use proc_macro::TokenStream;

/// See `amorsize::parallel`.
#[proc_macro_attribute]
pub fn parallel(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::parallel(args.into(), input.into()).into()
}
