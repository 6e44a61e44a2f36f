//! Which of the user's attributes the companion gets too, decided per attribute:
//!
//! | attribute | companion | why |
//! |---|---|---|
//! | `#[cfg(..)]` | yes | the companion exists exactly when the function does |
//! | `#[cfg_attr(pred, ..)]` | yes, if every attribute inside is forwarded | same rules, under the same condition |
//! | `#[deprecated]` | yes | a deprecated function's batch form is deprecated too |
//! | `#[must_use]` | yes | its results matter in a batch as much as one at a time |
//! | `#[allow]`, `#[warn]`, `#[deny]`, `#[forbid]`, `#[expect]` | yes | lint levels the user chose for this code |
//! | `#[doc(hidden)]` | yes | a hidden function's companion is hidden too |
//! | doc comments | no | the companion has its own, which links to the function |
//! | `#[inline]`, `#[cold]`, `#[track_caller]`, `#[target_feature]` | no | hints about the per-item function's code, not the batch's |
//! | `#[no_mangle]`, `#[export_name]`, `#[link_section]` | no | two items cannot share one symbol |
//! | anything else (`#[tracing::instrument]`, `#[test]`, other attribute macros) | no | instrumenting or transforming the batch is not what the user asked for |

use syn::{Attribute, Meta};

/// The attributes of the user's function that the companion gets too.
pub fn forwarded(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|attr| is_forwarded(&attr.meta))
        .collect()
}

fn is_forwarded(meta: &Meta) -> bool {
    let path = meta.path();
    let is = |name: &str| path.is_ident(name);
    if is("cfg")
        || is("deprecated")
        || is("must_use")
        || is("allow")
        || is("warn")
        || is("deny")
        || is("forbid")
        || is("expect")
    {
        return true;
    }
    if is("doc") {
        return matches!(meta, Meta::List(list) if list.tokens.to_string().trim() == "hidden");
    }
    if is("cfg_attr") {
        return cfg_attr_forwarded(meta);
    }
    false
}

/// `#[cfg_attr(pred, a, b)]` is forwarded when `a` and `b` are.
fn cfg_attr_forwarded(meta: &Meta) -> bool {
    let Meta::List(list) = meta else {
        return false;
    };
    let parsed = list.parse_args_with(|input: syn::parse::ParseStream| {
        let _predicate: Meta = input.parse()?;
        let mut inner = Vec::new();
        while !input.is_empty() {
            input.parse::<syn::Token![,]>()?;
            if input.is_empty() {
                break;
            }
            inner.push(input.parse::<Meta>()?);
        }
        Ok(inner)
    });
    match parsed {
        Ok(inner) => !inner.is_empty() && inner.iter().all(is_forwarded),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(source: &str) -> Vec<String> {
        let func: syn::ItemFn = syn::parse_str(&format!("{source} fn f(x: &u64) {{}}")).unwrap();
        forwarded(&func.attrs)
            .into_iter()
            .map(|a| quote::quote!(#a).to_string())
            .collect()
    }

    #[test]
    fn lints_conditions_and_deprecation_are_forwarded() {
        let kept = kept(
            "#[cfg(unix)] #[deprecated(note = \"use g\")] #[must_use] #[allow(dead_code)] \
             #[doc(hidden)] #[cfg_attr(test, allow(unused))]",
        );
        assert_eq!(kept.len(), 6, "{kept:?}");
    }

    #[test]
    fn code_hints_symbols_docs_and_macros_are_not() {
        let kept = kept(
            "/// docs\n#[inline] #[cold] #[no_mangle] #[export_name = \"x\"] \
             #[tracing::instrument] #[cfg_attr(test, inline)] #[cfg_attr(test, allow(x), no_mangle)] \
             #[doc(alias = \"g\")] #[track_caller]",
        );
        assert!(kept.is_empty(), "{kept:?}");
    }
}
