//! The attribute's options: `#[amorsize::parallel(name = par_custom, mode = "serial",
//! max_threads = 4, crate = path::to::amorsize)]`, and the `associated` flag.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Ident, LitInt, LitStr};

/// The options as written; `None` where the user wrote nothing.
#[derive(Default)]
pub struct Options {
    /// `name = ident`: the companion's name.
    pub name: Option<Ident>,
    /// `mode = "auto" | "serial" | "parallel"`, with the span of the string.
    pub mode: Option<(Mode, Span)>,
    /// `max_threads = N`: at most `N` threads per call (N ≥ 1).
    pub max_threads: Option<LitInt>,
    /// `crate = path` (or `crate = "path"`, serde's spelling): where the generated code finds
    /// amorsize, for a renamed dependency or a re-export.
    pub krate: Option<syn::Path>,
    /// `associated`: the function is an associated function of an inherent `impl` (called
    /// as `Self::f`), which the macro cannot see when the signature never mentions `Self`.
    pub associated: bool,
}

/// The pinned decision of one function.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Serial,
    Parallel,
}

const VALID: &str = "valid options are `name = par_custom_name`, `mode = \"auto\" | \"serial\" | \"parallel\"`, `max_threads = 4`, `crate = path::to::amorsize` and `associated`";

impl Options {
    /// Parses the attribute's arguments; every mistake is collected, not just the first.
    pub fn parse(args: TokenStream) -> Result<Options, syn::Error> {
        let mut options = Options::default();
        let mut errors: Option<syn::Error> = None;
        let parser = syn::meta::parser(|meta| {
            if let Err(err) = options.parse_one(&meta) {
                push(&mut errors, err);
                // Skip the rest of this option so the next one is still checked.
                while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    let _ = meta.input.parse::<proc_macro2::TokenTree>();
                }
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(args) {
            push(&mut errors, err);
        }
        match errors {
            Some(err) => Err(err),
            None => Ok(options),
        }
    }

    fn parse_one(&mut self, meta: &ParseNestedMeta) -> syn::Result<()> {
        let path = &meta.path;
        if path.is_ident("name") {
            if self.name.is_some() {
                return Err(meta.error("`name` is given twice; keep one"));
            }
            let value = meta.value()?;
            if value.peek(LitStr) {
                let lit: LitStr = value.parse()?;
                return Err(syn::Error::new_spanned(
                    lit,
                    "`name` takes an identifier, not a string: write `name = par_custom_name` without quotes",
                ));
            }
            let ident: Ident = value.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "`name` takes an identifier, such as `name = par_custom_name`",
                )
            })?;
            self.name = Some(ident);
            Ok(())
        } else if path.is_ident("mode") {
            if self.mode.is_some() {
                return Err(meta.error("`mode` is given twice; keep one"));
            }
            let value = meta.value()?;
            let lit: LitStr = value.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "`mode` takes a string: \"auto\", \"serial\" or \"parallel\"",
                )
            })?;
            let mode = match lit.value().as_str() {
                "auto" => Mode::Auto,
                "serial" => Mode::Serial,
                "parallel" => Mode::Parallel,
                other => {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        format!(
                            "unknown mode \"{other}\"; use \"auto\", \"serial\" or \"parallel\""
                        ),
                    ))
                }
            };
            self.mode = Some((mode, lit.span()));
            Ok(())
        } else if path.is_ident("max_threads") {
            if self.max_threads.is_some() {
                return Err(meta.error("`max_threads` is given twice; keep one"));
            }
            let value = meta.value()?;
            let lit: LitInt = value.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "`max_threads` takes a whole number of threads, such as `max_threads = 4`",
                )
            })?;
            match lit.base10_parse::<usize>() {
                Ok(0) => Err(syn::Error::new_spanned(
                    &lit,
                    "`max_threads` must be at least 1 (1 keeps every call a plain loop); leave the option out for no cap",
                )),
                Ok(_) if !lit.suffix().is_empty() && lit.suffix() != "usize" => {
                    Err(syn::Error::new_spanned(
                        &lit,
                        "`max_threads` takes a plain number such as `4` (or `4usize`)",
                    ))
                }
                Ok(_) => {
                    self.max_threads = Some(lit);
                    Ok(())
                }
                Err(_) => Err(syn::Error::new_spanned(
                    &lit,
                    "`max_threads` is too large; use a thread count such as `max_threads = 4`",
                )),
            }
        } else if path.is_ident("crate") {
            if self.krate.is_some() {
                return Err(meta.error("`crate` is given twice; keep one"));
            }
            let value = meta.value()?;
            let krate: syn::Path = if value.peek(LitStr) {
                let lit: LitStr = value.parse()?;
                lit.parse().map_err(|_| {
                    syn::Error::new_spanned(
                        &lit,
                        "`crate` takes the path to amorsize, such as `crate = my_crate::amorsize`",
                    )
                })?
            } else {
                value.parse().map_err(|err| {
                    syn::Error::new(
                        err.span(),
                        "`crate` takes the path to amorsize, such as `crate = my_crate::amorsize`",
                    )
                })?
            };
            self.krate = Some(krate);
            Ok(())
        } else if path.is_ident("associated") {
            if self.associated {
                return Err(meta.error("`associated` is given twice; keep one"));
            }
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error(
                    "`associated` takes no value: write `#[amorsize::parallel(associated)]`",
                ));
            }
            self.associated = true;
            Ok(())
        } else {
            let name = path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
            Err(syn::Error::new_spanned(
                path,
                format!("unknown option `{name}`; {VALID}"),
            ))
        }
    }
}

/// Adds `err` to the collected errors.
pub fn push(errors: &mut Option<syn::Error>, err: syn::Error) {
    match errors {
        Some(existing) => existing.combine(err),
        None => *errors = Some(err),
    }
}
