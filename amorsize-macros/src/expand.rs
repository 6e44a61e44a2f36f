//! Code generation: the user's function, unchanged, and its `par_` companion beside it.
//!
//! The companion is written from one template (`companion`): its name, attributes, doc and
//! signature come from the user's function and options; its body declares the function's
//! `static Site`, checks the user's concrete types where the function is defined, and calls
//! the runtime's map with a closure that calls the function on one item.

use crate::attr::{push, Mode, Options};
use crate::signature::{Context, ItemPass, Receiver, Shape};
use crate::types::{
    body_mentions_self, const_key, has_impl_trait, is_generic_sized, mentions_generics,
    name_elided_lifetimes, signature_mentions_self, unparenthesized,
};
use crate::{forward, valid};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{GenericParam, ItemFn, ReturnType, WherePredicate};

/// The attribute's whole expansion. Errors come back as `compile_error!`s next to the
/// user's function, emitted as written so one mistake does not cascade.
pub fn parallel(args: TokenStream, input: TokenStream) -> TokenStream {
    let options = Options::parse(args);
    let func: ItemFn = match syn::parse2(input.clone()) {
        Ok(func) => func,
        Err(_) => return not_a_function(input, options.err()),
    };
    let shape = Shape::of(&func.sig);
    let mut errors = None;
    let options = options.map_err(|err| push(&mut errors, err)).ok();
    if let Err(err) = valid::check(&func, &shape) {
        push(&mut errors, err);
    }
    match (errors, options) {
        (None, Some(options)) => {
            let companion = companion(&func, &shape, &options);
            quote!(#func #companion)
        }
        (Some(err), _) => {
            let err = err.to_compile_error();
            quote!(#input #err)
        }
        (None, None) => unreachable!("options failed without an error"),
    }
}

/// The error for an attribute placed on something that is not a function with a body.
fn not_a_function(input: TokenStream, options_error: Option<syn::Error>) -> TokenStream {
    let message = match syn::parse2::<syn::TraitItemFn>(input.clone()) {
        Ok(method) if method.default.is_none() => {
            "#[amorsize::parallel] needs the body of the function that handles one item, and this trait method declaration has none; put the attribute on a function with a body (a free function, or a method of an inherent `impl`)".to_owned()
        }
        _ => {
            let what = match syn::parse2::<syn::Item>(input.clone()) {
                Ok(item) => describe(&item),
                Err(_) => "this",
            };
            format!(
                "#[amorsize::parallel] goes on a function that handles one item, e.g. `fn score(x: &u64) -> u64`; {what} is not a function"
            )
        }
    };
    let mut err = syn::Error::new(first_span(&input), message);
    if let Some(options_error) = options_error {
        err.combine(options_error);
    }
    let err = err.to_compile_error();
    quote!(#input #err)
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .find(|tt| !matches!(tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |tt| tt.span())
}

fn describe(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Union(_) => "a union",
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Impl(_) => "an impl block (put the attribute on a method inside it)",
        syn::Item::Mod(_) => "a module",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a `use`",
        syn::Item::Macro(_) => "a macro invocation",
        syn::Item::ForeignMod(_) => "an `extern` block",
        _ => "this item",
    }
}

/// What the companion's signature and body need for the item parameter.
struct ItemParts {
    /// The companion's parameter: `items: &[impl Borrow<T> + Sync]`, `items: impl IntoItems<T>`…
    param: TokenStream,
    /// The closure's item, turned into the function's argument.
    arg: TokenStream,
    /// Whether the runtime's `_slice` entry points take the items (borrowed ones), rather
    /// than `map` / `try_map` (anything `IntoItems`).
    slice: bool,
}

/// Bounds on the user's types: in the where-clause when they depend on the caller's generic
/// choices, else checked once in the companion's body, spanned on the user's type (a
/// rustdoc without always-true bounds like `u64: Sync`, and an error at the user's code).
#[derive(Default)]
struct Bounds {
    predicates: Vec<WherePredicate>,
    /// Bounds on concrete types that must be where-clauses (to be assumed in the body) but
    /// say nothing a reader needs: left out of the companion rustdoc shows.
    undocumented: Vec<WherePredicate>,
    checks: Vec<TokenStream>,
}

impl Bounds {
    /// Requires `ty: Sync` (or `Send`, with `check = "sent_across_threads"`).
    fn require(
        &mut self,
        ty: &syn::Type,
        bound: TokenStream,
        check: &str,
        generics: &syn::Generics,
        krate: &TokenStream,
    ) {
        let span = ty.span();
        let ty = unparenthesized(ty);
        if has_impl_trait(ty) {
            return;
        }
        if mentions_generics(ty, generics) {
            // A where-clause cannot name elided lifetimes; the runtime's own bounds still
            // hold such a type.
            if !crate::types::has_lifetimes(ty) {
                self.predicates
                    .push(syn::parse_quote_spanned! {span=> #ty: #bound });
            }
        } else {
            let check = format_ident!("{}", check, span = span);
            self.checks
                .push(quote_spanned! {span=> #krate::__private::check::#check::<#ty>(); });
        }
    }
}

/// The generated `par_<name>`.
fn companion(func: &ItemFn, shape: &Shape, options: &Options) -> TokenStream {
    let sig = &func.sig;
    let name = &sig.ident;
    let krate = match &options.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::amorsize),
    };
    // A companion named by default takes the attribute's span, so that a clash with an
    // existing `par_<name>` points at the attribute, where `name = …` would go.
    let companion_name = options
        .name
        .clone()
        .unwrap_or_else(|| format_ident!("par_{}", name.unraw(), span = Span::call_site()));
    let vis = &func.vis;
    let attrs = forward::forwarded(&func.attrs);
    let (item_arg, pass) = shape.item.as_ref().expect("validated: has an item");
    let is_method = matches!(shape.receiver, Receiver::Shared);

    let ret_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };

    // Names the companion uses: `items` unless a context parameter already has that name, and
    // the context parameters' own, unless one would hide the function the body calls.
    let items = if shape.context.iter().any(|c| c.ident == "items") {
        format_ident!("__amorsize_items")
    } else {
        format_ident!("items")
    };
    let item_var = format_ident!("__amorsize_item");
    let calls_by_name = !is_method && !is_associated(func, shape, options);
    let context_ident = |context: &Context| {
        if calls_by_name && context.ident == *name {
            format_ident!(
                "__amorsize_{}",
                context.ident.unraw(),
                span = context.ident.span()
            )
        } else {
            context.ident.clone()
        }
    };

    let mut generics = sig.generics.clone();
    let mut bounds = Bounds::default();
    // Elided lifetimes in the item's type (`&Wrapper<'_>`, `&&str`) cannot appear in an
    // `impl Trait` parameter: they get named lifetime parameters of the companion instead.
    let mut named_lifetimes = Vec::new();
    let named_item = match pass {
        ItemPass::Borrowed { target, .. } => {
            name_elided_lifetimes(unparenthesized(target), &mut named_lifetimes)
        }
        ItemPass::Owned(ty) => name_elided_lifetimes(unparenthesized(ty), &mut named_lifetimes),
    };
    let item_span = item_arg.ty.span();
    let parts = match pass {
        ItemPass::Borrowed { reference, target } if is_generic_sized(target, &sig.generics) => {
            // `Borrow` would leave a generic `T` uninferable (a `String` borrows as both
            // `String` and `str`): take a slice of exactly `T`.
            let lifetime = &reference.lifetime;
            bounds.require(
                &named_item,
                quote!(::core::marker::Sync),
                "shared_across_threads",
                &sig.generics,
                &krate,
            );
            ItemParts {
                param: quote!(#items: &#lifetime [#named_item]),
                arg: quote!(#item_var),
                slice: true,
            }
        }
        ItemPass::Borrowed { reference, .. } => {
            // A slice, `Vec`, array or boxed slice whose elements borrow as the item.
            let lifetime = &reference.lifetime;
            let items_ty = quote_spanned! {item_span=>
                impl #krate::__private::BorrowedItems<#named_item> + ?::core::marker::Sized
            };
            ItemParts {
                param: quote!(#items: &#lifetime (#items_ty)),
                arg: quote!(::core::borrow::Borrow::<#named_item>::borrow(#item_var)),
                slice: true,
            }
        }
        ItemPass::Owned(_) => {
            // `IntoItems<T>` requires `T: Send`. Said in the where-clause, for a concrete `T`
            // too: the error is then at the parameter, and the body assumes the bound (a
            // check in the body would leave the map's own bound to fail a second time).
            if !crate::types::has_lifetimes(&named_item) && !has_impl_trait(&named_item) {
                let bound: WherePredicate =
                    syn::parse_quote_spanned! {item_span=> #named_item: ::core::marker::Send };
                if mentions_generics(&named_item, &sig.generics) {
                    bounds.predicates.push(bound);
                } else {
                    bounds.undocumented.push(bound);
                }
            }
            let param_ty =
                quote_spanned! {item_span=> impl #krate::__private::IntoItems<#named_item> };
            ItemParts {
                param: quote!(#items: #param_ty),
                arg: quote!(#item_var),
                slice: false,
            }
        }
    };
    if let ReturnType::Type(_, ty) = &sig.output {
        if !crate::types::has_lifetimes(ty) && !has_impl_trait(ty) {
            let bound: WherePredicate =
                syn::parse_quote_spanned! {ty.span()=> #ty: ::core::marker::Send };
            if mentions_generics(ty, &sig.generics) {
                bounds.predicates.push(bound);
            } else {
                // Said in the where-clause of every companion, spanned on the result's
                // type: one error there (rustc merges the identical ones), and the bodies
                // assume it. (A result that borrows is checked by the calls, below.)
                bounds.undocumented.push(bound);
            }
        }
    }
    if is_method {
        let span = sig.inputs.first().map_or_else(|| name.span(), |a| a.span());
        bounds
            .predicates
            .push(syn::parse_quote_spanned! {span=> Self: ::core::marker::Sync });
    }

    // Context parameters: shared by every item (by reference, or cloned per item). A stream
    // returns an iterator that keeps them, so its companion names their elided lifetimes
    // (`iter_lifetimes`) to say that it captures them.
    let mut context_params = Vec::new();
    let mut iter_context_params = Vec::new();
    let mut iter_lifetimes: Vec<syn::Lifetime> = Vec::new();
    // An async companion's future outlives the call: its context is owned or `'static`.
    let mut async_context_params = Vec::new();
    // …and moved into it, so a context taken by value must be `Send` there: a where-clause
    // for one of a generic type (a concrete one is held by the runtime's own bounds).
    let mut async_bounds = Bounds::default();
    let mut context_args = Vec::new();
    let mut shared_docs = Vec::new();
    for context in &shape.context {
        let ident = context_ident(context);
        let ty = &context.arg.ty;
        let shown = context.ident.unraw().to_string();
        if same_type(ty, &item_arg.ty) && at_most_one_lifetime(ty) && !is_primitive(ty) {
            // Looks like a second item (`fn dist(a: &P, b: &P)`): a slice passed here gets
            // an error that says only the first parameter varies per item.
            let span = ty.span();
            let named = name_elided_lifetimes(ty, &mut named_lifetimes);
            context_params.push(quote_spanned! {span=>
                #ident: impl #krate::__private::SharedArg<#named> + ::core::marker::Sync
            });
            iter_context_params.push(context_params[context_params.len() - 1].clone());
            let owned = crate::types::static_elided_lifetimes(ty);
            async_context_params.push(quote_spanned! {span=>
                #ident: impl #krate::__private::SharedArg<#owned>
                    + ::core::marker::Sync + ::core::marker::Send + 'static
            });
            context_args.push(quote!(#krate::__private::SharedArg::shared(&#ident)));
        } else {
            context_params.push(quote!(#ident: #ty));
            let named = name_elided_lifetimes(ty, &mut iter_lifetimes);
            iter_context_params.push(quote!(#ident: #named));
            let owned = crate::types::static_elided_lifetimes(ty);
            async_context_params.push(quote!(#ident: #owned));
            context_args.push(if context.by_ref {
                quote!(#ident)
            } else {
                quote!(::core::clone::Clone::clone(&#ident))
            });
            if !context.by_ref {
                async_bounds.require(
                    ty,
                    quote!(::core::marker::Send),
                    "sent_across_threads",
                    &sig.generics,
                    &krate,
                );
            }
        }
        if context.by_ref {
            let syn::Type::Reference(reference) = &**ty else {
                unreachable!("by_ref contexts are references")
            };
            bounds.require(
                &reference.elem,
                quote!(::core::marker::Sync),
                "shared_across_threads",
                &sig.generics,
                &krate,
            );
            shared_docs.push(format!("`{shown}` (borrowed)"));
        } else {
            bounds.require(
                ty,
                quote!(::core::clone::Clone + ::core::marker::Sync),
                "cloned_across_threads",
                &sig.generics,
                &krate,
            );
            shared_docs.push(format!("`{shown}` (cloned for each item)"));
        }
    }
    for lifetime in named_lifetimes {
        generics
            .params
            .push(GenericParam::Lifetime(syn::LifetimeParam::new(lifetime)));
    }
    // Lifetimes first, as Rust requires.
    let (lifetimes, others): (Vec<_>, Vec<_>) = generics
        .params
        .into_iter()
        .partition(|p| matches!(p, GenericParam::Lifetime(_)));
    generics.params = lifetimes.into_iter().chain(others).collect();
    generics
        .make_where_clause()
        .predicates
        .extend(bounds.predicates);
    let documented_generics = generics.clone();
    generics
        .make_where_clause()
        .predicates
        .extend(bounds.undocumented.iter().cloned());
    let (_, _, where_clause) = generics.split_for_impl();
    let (_, _, documented_where) = documented_generics.split_for_impl();
    let params = &generics.params;

    // Type and const parameters, for the call's turbofish and the per-instantiation site key
    // (a `usize` const parameter keys as the type `[(); N]`, another primitive one as
    // `__private::ConstU32<N>` and the like; a const of an aliased type shares one site).
    let mut type_args: Vec<TokenStream> = Vec::new();
    let mut key_types: Vec<TokenStream> = Vec::new();
    for param in &sig.generics.params {
        match param {
            GenericParam::Type(t) => {
                type_args.push(t.ident.to_token_stream());
                key_types.push(t.ident.to_token_stream());
            }
            GenericParam::Const(c) => {
                let ident = &c.ident;
                type_args.push(ident.to_token_stream());
                if let Some(key) = const_key(&c.ty, ident, &krate) {
                    key_types.push(key);
                }
            }
            GenericParam::Lifetime(_) => {}
        }
    }
    let turbofish = if type_args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#type_args),*>)
    };
    let associated = is_method || is_associated(func, shape, options);
    let callee = if associated {
        quote!(Self::#name #turbofish)
    } else {
        quote!(#name #turbofish)
    };
    let (receiver_param, self_arg) = if is_method {
        let receiver = sig.inputs.first();
        (quote!(#receiver,), quote!(self,))
    } else {
        (quote!(), quote!())
    };

    let site_key = if associated {
        Some(quote!((Self, #(#key_types,)*)))
    } else if key_types.is_empty() {
        None
    } else {
        Some(quote!((#(#key_types,)*)))
    };
    // Reports name an instance as the user wrote it: `Type::method::<u8>`.
    let self_type = if associated {
        quote!(::core::option::Option::Some(
            ::core::any::type_name::<Self>()
        ))
    } else {
        quote!(::core::option::Option::None)
    };
    // One site for every companion of the function (a site learns once, whichever entry
    // point calls it), in a hidden function beside them: a `static` cannot sit in an `impl`.
    let site_fn = format_ident!("__amorsize_site_{}", name.unraw(), span = name.span());
    let site_base = if associated {
        quote!(Self::#site_fn())
    } else {
        quote!(#site_fn())
    };
    let site = match site_key {
        None => site_base.clone(),
        Some(key) => quote!(#site_base.instance_named(
            ::core::any::type_name::<#key>(),
            #self_type,
            &[#(::core::any::type_name::<#key_types>()),*],
        )),
    };
    let mode = match options.mode.map_or(Mode::Auto, |(m, _)| m) {
        Mode::Auto => quote!(Auto),
        Mode::Serial => quote!(Serial),
        Mode::Parallel => quote!(Parallel),
    };
    let max_threads = match &options.max_threads {
        Some(lit) => {
            let value = lit.base10_parse::<usize>().unwrap_or(0);
            quote!(#value)
        }
        None => quote!(0),
    };
    let name_str = name.unraw().to_string();
    let ItemParts { param, arg, slice } = parts;
    let checks = bounds.checks;
    let items_arg = match pass {
        ItemPass::Borrowed { target, .. } if !is_generic_sized(target, &sig.generics) => {
            quote!(#krate::__private::BorrowedItems::as_items(#items))
        }
        _ => quote!(#items),
    };
    let map_args = quote! {
        #site, #items_arg, |#item_var| {
            #callee(#self_arg #arg, #(#context_args),*)
        }
    };
    // The arguments of a companion whose closure outlives the call (a stream's, a
    // future's): it owns the context, and gets each item as `arg` says.
    let owning_call = |arg: &TokenStream| {
        quote! {
            #site, #items, move |#item_var| {
                #callee(#self_arg #arg, #(#context_args),*)
            }
        }
    };
    // The stream companion, `par_<name>_iter`: any `IntoIterator` of owned items (or of
    // owned values that borrow as the item), mapped by a closure that owns the context.
    let stream = stream_parts(StreamInput {
        pass,
        named_item: &named_item,
        sig,
        items: &items,
        item_var: &item_var,
    })
    .map(|parts| {
        let StreamParts {
            param,
            arg,
            predicate,
            by_ref,
        } = parts;
        let call = owning_call(&arg);
        let mapper = if by_ref {
            quote!(#krate::__private::map_iter_ref)
        } else {
            quote!(#krate::__private::map_iter)
        };
        (param, call, predicate, mapper)
    });
    let fn_token = &sig.fn_token;
    let body_span = name.span();
    let cfgs: Vec<_> = attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
        .collect();
    let site_name = quote!(::core::concat!(::core::module_path!(), "::", #name_str));
    let mut out = quote_spanned! {body_span=>
        #(#cfgs)*
        #[doc(hidden)]
        #[inline]
        #fn_token #site_fn() -> &'static #krate::__private::Site {
            static __AMORSIZE_SITE: #krate::__private::Site =
                #krate::__private::Site::new(#site_name)
                    .with_mode(#krate::__private::Mode::#mode)
                    .with_max_threads(#max_threads);
            &__AMORSIZE_SITE
        }
    };
    // The extra parameters of reductions and folds, named as rayon names them unless a
    // parameter of the function already is; a fold's accumulator type `Acc` likewise.
    let taken = |wanted: &str| shape.context.iter().any(|c| c.ident == wanted) || items == wanted;
    let fresh = |wanted: &str| {
        if taken(wanted) {
            format_ident!("__amorsize_{}", wanted)
        } else {
            format_ident!("{}", wanted)
        }
    };
    let acc = if sig.generics.params.iter().any(|p| match p {
        GenericParam::Type(t) => t.ident == "Acc",
        GenericParam::Const(c) => c.ident == "Acc",
        GenericParam::Lifetime(_) => false,
    }) {
        format_ident!("__AmorsizeAcc")
    } else {
        format_ident!("Acc")
    };
    let extra_names = ExtraNames {
        identity: fresh("identity"),
        op: fresh("op"),
        init: fresh("init"),
        fold: fresh("fold"),
        combine: fresh("combine"),
        acc,
    };
    // The async companions, `par_<name>_async` (and `try_par_<name>_async`): owned items,
    // owned or `'static` context, a future that runs the map on the pool.
    let asynchronous = async_parts(AsyncInput {
        pass,
        named_item: &named_item,
        sig,
        is_method,
        associated,
        items: &items,
        krate: &krate,
    })
    .map(|parts| {
        let AsyncParts {
            param,
            lent,
            predicates,
        } = parts;
        // Async companions exist for functions without `self` only: `self_arg` is empty.
        let call = owning_call(&item_var.to_token_stream());
        (param, call, predicates, lent)
    });
    let mut kinds = Kind::of(sig, &krate);
    if stream.is_some() {
        kinds.push(Kind::Iter);
    }
    if asynchronous.is_some() {
        let fallible = kinds.iter().any(|k| matches!(k, Kind::Try { .. }));
        kinds.push(Kind::Async);
        if fallible {
            let batch = kinds.iter().find_map(|k| match k {
                Kind::Try { batch } => Some(batch.clone()),
                _ => None,
            });
            kinds.push(Kind::TryAsync {
                batch: batch.expect("a fallible function has a batch type"),
            });
        }
    }
    for kind in kinds {
        let companion_name = kind.name(&companion_name);
        let doc = doc(&name_str, associated, &items, &shared_docs, &kind);
        let mapper = kind.mapper(&krate, slice);
        let Extras {
            params: extra_params,
            args: extra_args,
            generic: extra_generic,
        } = kind.extras(&ret_ty, &extra_names);
        let mut params = params.clone();
        if let Some(generic) = extra_generic {
            params.push(generic);
        }
        let mut batch = kind.batch(&ret_ty, &extra_names);
        let mut map_args = quote!(#map_args #extra_args);
        let mut param = param.clone();
        let mut context_params = &context_params;
        let mut receiver_param = receiver_param.clone();
        let mut where_clause = where_clause.cloned();
        let mut documented_where = documented_where.cloned();
        let mut mapper = mapper;
        if let (Kind::Iter, Some((stream_param, call, predicate, stream_mapper))) = (&kind, &stream)
        {
            mapper = stream_mapper.clone();
            // Every lifetime of the companion is captured by the iterator it returns.
            let mut lifetimes = iter_lifetimes.clone();
            if is_method {
                if let Some(syn::FnArg::Receiver(receiver)) = sig.inputs.first() {
                    if crate::signature::shared_self(receiver) == Some(None) {
                        let own = syn::Lifetime::new("'__amorsize_self", Span::call_site());
                        receiver_param = quote!(&#own self,);
                        lifetimes.push(own);
                    }
                }
            }
            let mut with_lifetimes: syn::punctuated::Punctuated<GenericParam, syn::Token![,]> =
                lifetimes
                    .iter()
                    .map(|l| GenericParam::Lifetime(syn::LifetimeParam::new(l.clone())))
                    .collect();
            with_lifetimes.extend(params.iter().cloned());
            params = with_lifetimes;
            let captures = params.iter().filter_map(|p| match p {
                GenericParam::Lifetime(l) => {
                    let l = &l.lifetime;
                    Some(quote!(+ #krate::__private::Captures<#l>))
                }
                _ => None,
            });
            // `Self` too, with its `impl`'s lifetimes (`impl<'a> Parser<'a>`), which
            // edition 2021 captures only when the bounds mention them.
            let self_capture = associated.then(|| quote!(+ #krate::__private::CapturesType<Self>));
            batch = quote!(
                impl ::core::iter::Iterator<Item = #ret_ty> #(#captures)* #self_capture
            );
            map_args = call.clone();
            param = stream_param.clone();
            context_params = &iter_context_params;
            if let Some(predicate) = predicate {
                for clause in [&mut where_clause, &mut documented_where] {
                    clause
                        .get_or_insert_with(|| syn::parse_quote!(where))
                        .predicates
                        .push(predicate.clone());
                }
            }
        }
        if let (Kind::Async | Kind::TryAsync { .. }, Some((async_param, call, predicates, lent))) =
            (&kind, &asynchronous)
        {
            let output = match &kind {
                Kind::TryAsync { batch } => batch.clone(),
                _ => quote!(::std::vec::Vec<#ret_ty>),
            };
            batch = quote!(#krate::__private::MapFuture<#output>);
            let entry = match (&kind, lent) {
                (Kind::Async, false) => "map_async",
                (Kind::Async, true) => "map_async_lent",
                (_, false) => "try_map_async",
                (_, true) => "try_map_async_lent",
            };
            let entry = format_ident!("{}", entry);
            mapper = quote!(#krate::__private::#entry);
            map_args = call.clone();
            param = async_param.clone();
            context_params = &async_context_params;
            for clause in [&mut where_clause, &mut documented_where] {
                clause
                    .get_or_insert_with(|| syn::parse_quote!(where))
                    .predicates
                    .extend(predicates.iter().chain(&async_bounds.predicates).cloned());
            }
        }
        let where_clause = where_clause.as_ref();
        let documented_where = documented_where.as_ref();
        let params = &params;
        // The map requires the result to be `Send`. The call's own span (its path and
        // parentheses, not the closure inside) is set on a concrete return type, so that a
        // result that is not `Send` gets its one error there.
        let map_call = match &sig.output {
            ReturnType::Type(_, ty) if !mentions_generics(ty, &sig.generics) => {
                let span = ty.span();
                let mut args =
                    proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, map_args.clone());
                args.set_span(span);
                let mapper = respan(mapper, span);
                quote!(#mapper #args)
            }
            _ => quote!(#mapper(#map_args)),
        };
        let body = quote_spanned! {body_span=>
            #(#checks)*
            #[allow(deprecated)]
            let __amorsize_results = #map_call;
            __amorsize_results
        };
        let signature = |where_clause: Option<&syn::WhereClause>| {
            quote! {
                #(#attrs)*
                #[doc = #doc]
                // The added bounds restate the user's own, where clippy would see them twice.
                #[allow(clippy::multiple_bound_locations)]
                #vis #fn_token #companion_name<#params>(
                    #receiver_param #param, #(#context_params,)* #extra_params
                ) -> #batch
                #where_clause
            }
        };
        out.extend(if bounds.undocumented.is_empty() {
            let signature = signature(where_clause);
            quote!(#signature { #body })
        } else {
            // rustdoc reads signatures only: the one it sees leaves out the always-true
            // bounds.
            let compiled = signature(where_clause);
            let documented = signature(documented_where);
            quote! {
                #[cfg(not(doc))]
                #compiled { #body }
                #[cfg(doc)]
                #documented { #body }
            }
        });
    }
    out
}

/// The companions one function gets, all from the template above: `par_<name>` and
/// `par_<name>_reduce` always (the reduction unless the result borrows or is `()` or an
/// `impl Trait`), and `try_par_<name>` and `try_par_<name>_reduce` for a function returning
/// `Result` or `Option`.
enum Kind {
    /// `par_<name>`: every result, in a `Vec`.
    Map,
    /// `par_<name>_reduce`: the results combined with `op` from `identity()`.
    Reduce,
    /// `par_<name>_fold`: the results folded into accumulators, joined with `combine`.
    Fold,
    /// `try_par_<name>`: every value, or the first failure; `batch` is the return type.
    Try { batch: TokenStream },
    /// `try_par_<name>_reduce`: the values combined, or the first failure; `ok` is the
    /// value's type.
    TryReduce { ok: TokenStream },
    /// `par_<name>_iter`: a lazy iterator of the results of any input iterator.
    Iter,
    /// `par_<name>_async`: a future of every result, mapped on the pool.
    Async,
    /// `try_par_<name>_async`: a future of every value or the first failure.
    TryAsync { batch: TokenStream },
}

impl Kind {
    fn of(sig: &syn::Signature, krate: &TokenStream) -> Vec<Kind> {
        let mut kinds = vec![Kind::Map];
        let ReturnType::Type(_, ty) = &sig.output else {
            return kinds;
        };
        // Elided lifetimes cannot be named in the closures' types; named ones can.
        let reducible = |ty: &syn::Type| {
            let mut elided = Vec::new();
            name_elided_lifetimes(ty, &mut elided);
            elided.is_empty()
                && !has_impl_trait(ty)
                && !matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
        };
        if reducible(ty) {
            kinds.push(Kind::Reduce);
            kinds.push(Kind::Fold);
        }
        if let Some(Fallible { batch, ok }) = fallible(ty, krate) {
            kinds.push(Kind::Try { batch });
            if reducible(ty) {
                kinds.push(Kind::TryReduce { ok });
            }
        }
        kinds
    }

    /// `par_name` (or the `name = …` given) for the map, `try_` before it for a fallible
    /// one, `_reduce` after it for a reduction.
    fn name(&self, map_name: &syn::Ident) -> syn::Ident {
        let base = map_name.unraw();
        let span = map_name.span();
        match self {
            Kind::Map => map_name.clone(),
            Kind::Reduce => format_ident!("{}_reduce", base, span = span),
            Kind::Fold => format_ident!("{}_fold", base, span = span),
            Kind::Iter => format_ident!("{}_iter", base, span = span),
            Kind::Async => format_ident!("{}_async", base, span = span),
            Kind::TryAsync { .. } => format_ident!("try_{}_async", base, span = span),
            Kind::Try { .. } => format_ident!("try_{}", base, span = span),
            Kind::TryReduce { .. } => format_ident!("try_{}_reduce", base, span = span),
        }
    }

    fn batch(&self, ret_ty: &TokenStream, names: &ExtraNames) -> TokenStream {
        match self {
            Kind::Map => quote!(::std::vec::Vec<#ret_ty>),
            Kind::Reduce | Kind::TryReduce { .. } => ret_ty.clone(),
            Kind::Fold => names.acc.to_token_stream(),
            Kind::Try { batch } => batch.clone(),
            // Set where the stream's and async parts are built.
            Kind::Iter | Kind::Async | Kind::TryAsync { .. } => {
                quote!(::core::iter::Empty<#ret_ty>)
            }
        }
    }

    /// The parameters a reduction or fold takes after the function's own (and the
    /// arguments passing them on), and the generic parameter a fold adds.
    fn extras(&self, ret_ty: &TokenStream, names: &ExtraNames) -> Extras {
        let ExtraNames {
            identity,
            op,
            init,
            fold,
            combine,
            acc,
        } = names;
        let shared = quote!(::core::marker::Sync + ::core::marker::Send);
        let reduction = |value: &TokenStream| Extras {
            params: quote! {
                #identity: impl ::core::ops::Fn() -> #value + #shared,
                #op: impl ::core::ops::Fn(#value, #value) -> #value + #shared,
            },
            args: quote!(, #identity, #op),
            generic: None,
        };
        match self {
            Kind::Reduce => reduction(ret_ty),
            Kind::TryReduce { ok } => reduction(ok),
            Kind::Fold => Extras {
                params: quote! {
                    #init: impl ::core::ops::Fn() -> #acc + #shared,
                    #fold: impl ::core::ops::Fn(#acc, #ret_ty) -> #acc + #shared,
                    #combine: impl ::core::ops::Fn(#acc, #acc) -> #acc + #shared,
                },
                args: quote!(, #init, #fold, #combine),
                generic: Some(syn::parse_quote!(#acc: ::core::marker::Send)),
            },
            Kind::Map | Kind::Try { .. } | Kind::Iter | Kind::Async | Kind::TryAsync { .. } => {
                Extras {
                    params: quote!(),
                    args: quote!(),
                    generic: None,
                }
            }
        }
    }

    fn mapper(&self, krate: &TokenStream, slice: bool) -> TokenStream {
        let entry = match self {
            Kind::Map => "map",
            Kind::Reduce => "map_reduce",
            Kind::Fold => "map_fold",
            Kind::Try { .. } => "try_map",
            Kind::TryReduce { .. } => "try_map_reduce",
            // Set where the stream's and async parts are built.
            Kind::Iter | Kind::Async | Kind::TryAsync { .. } => {
                return quote!(#krate::__private::map_iter)
            }
        };
        let entry = if slice {
            format_ident!("{}_slice", entry)
        } else {
            format_ident!("{}", entry)
        };
        quote!(#krate::__private::#entry)
    }
}

/// The names of the extra parameters of reductions and folds, and of a fold's accumulator
/// type.
struct ExtraNames {
    identity: syn::Ident,
    op: syn::Ident,
    init: syn::Ident,
    fold: syn::Ident,
    combine: syn::Ident,
    acc: syn::Ident,
}

/// A companion's extra parameters, the arguments passing them on, and a generic parameter
/// it adds.
struct Extras {
    params: TokenStream,
    args: TokenStream,
    generic: Option<GenericParam>,
}

/// What building the stream companion needs to know.
struct StreamInput<'a> {
    pass: &'a ItemPass<'a>,
    named_item: &'a syn::Type,
    sig: &'a syn::Signature,
    items: &'a syn::Ident,
    item_var: &'a syn::Ident,
}

/// The stream companion's item parameter, the closure's argument, a bound it adds, and
/// whether the items are lent (`map_iter_ref`) rather than moved (`map_iter`).
struct StreamParts {
    param: TokenStream,
    arg: TokenStream,
    predicate: Option<WherePredicate>,
    by_ref: bool,
}

/// The stream companion's parts, or `None` when the function cannot have one: an item or a
/// result that borrows (the stream owns its items, and its results outlive their batch), or
/// an `impl Trait` among them.
fn stream_parts(input: StreamInput<'_>) -> Option<StreamParts> {
    let StreamInput {
        pass,
        named_item,
        sig,
        items,
        item_var,
    } = input;
    if !item_and_result_stand_alone(sig, named_item) {
        return None;
    }
    let span = named_item.span();
    let send = quote!(::core::marker::Send);
    // Borrowed items are lent to the function and stay on the thread that reads them
    // (`map_iter_ref`: they need only be `Sync`); owned ones move (`map_iter`).
    let sync = quote!(::core::marker::Sync);
    Some(match pass {
        ItemPass::Borrowed { target, .. } if is_generic_sized(target, &sig.generics) => {
            // Exactly `T`s for `fn f<T>(x: &T)`: `Borrow` would leave `T` uninferable.
            StreamParts {
                param: quote_spanned! {span=>
                    #items: impl ::core::iter::IntoIterator<Item = #named_item>
                },
                arg: quote!(#item_var),
                predicate: Some(syn::parse_quote_spanned! {span=> #named_item: #sync }),
                by_ref: true,
            }
        }
        ItemPass::Borrowed { .. } => StreamParts {
            param: quote_spanned! {span=>
                #items: impl ::core::iter::IntoIterator<
                    Item = impl ::core::borrow::Borrow<#named_item> + #sync
                >
            },
            arg: quote!(::core::borrow::Borrow::<#named_item>::borrow(#item_var)),
            predicate: None,
            by_ref: true,
        },
        ItemPass::Owned(_) => StreamParts {
            param: quote_spanned! {span=>
                #items: impl ::core::iter::IntoIterator<Item = #named_item>
            },
            arg: quote!(#item_var),
            predicate: mentions_generics(named_item, &sig.generics)
                .then(|| syn::parse_quote_spanned! {span=> #named_item: #send }),
            by_ref: false,
        },
    })
}

/// Whether the item type and the result type borrow nothing and name no `impl Trait`: what
/// a companion needs whose items or results outlive the call's borrows (the stream and
/// async companions).
fn item_and_result_stand_alone(sig: &syn::Signature, named_item: &syn::Type) -> bool {
    let stands_alone = |ty: &syn::Type| !crate::types::has_lifetimes(ty) && !has_impl_trait(ty);
    let result = match &sig.output {
        ReturnType::Type(_, ty) => stands_alone(ty),
        ReturnType::Default => true,
    };
    result && stands_alone(named_item)
}

/// What building the async companions needs to know.
struct AsyncInput<'a> {
    pass: &'a ItemPass<'a>,
    named_item: &'a syn::Type,
    sig: &'a syn::Signature,
    is_method: bool,
    /// An associated function: its impl's type (and so the impl's generics) is in the future.
    associated: bool,
    items: &'a syn::Ident,
    krate: &'a TokenStream,
}

/// The async companions' item parameter, whether the items are lent (`map_async_lent`)
/// rather than moved, and the bounds they add.
struct AsyncParts {
    param: TokenStream,
    lent: bool,
    predicates: Vec<WherePredicate>,
}

/// The async companions' parts, or `None` when the function cannot have them: a method (its
/// `&self` cannot outlive the call), lifetime parameters, or an item or result that borrows.
fn async_parts(input: AsyncInput<'_>) -> Option<AsyncParts> {
    let AsyncInput {
        pass,
        named_item,
        sig,
        is_method,
        associated,
        items,
        krate,
    } = input;
    if is_method
        || sig
            .generics
            .params
            .iter()
            .any(|p| matches!(p, GenericParam::Lifetime(_)))
    {
        return None;
    }
    if !item_and_result_stand_alone(sig, named_item) {
        return None;
    }
    // Every type parameter ends up in the future, which outlives the call; so does an
    // associated function's `Self`, with the impl's own parameters (`impl<T> Holder<T>`).
    let mut predicates: Vec<WherePredicate> = sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => {
                let ident = &t.ident;
                Some(syn::parse_quote!(#ident: 'static))
            }
            _ => None,
        })
        .collect();
    if associated {
        predicates.push(syn::parse_quote!(Self: 'static));
    }
    let span = named_item.span();
    Some(match pass {
        ItemPass::Borrowed { target, .. } if is_generic_sized(target, &sig.generics) => {
            predicates.push(syn::parse_quote_spanned! {span=>
                #named_item: ::core::marker::Send + ::core::marker::Sync
            });
            AsyncParts {
                param: quote_spanned! {span=> #items: ::std::vec::Vec<#named_item> },
                lent: true,
                predicates,
            }
        }
        ItemPass::Borrowed { .. } => AsyncParts {
            param: quote_spanned! {span=>
                #items: impl #krate::__private::OwnedItems<#named_item>
            },
            lent: true,
            predicates,
        },
        ItemPass::Owned(_) => AsyncParts {
            param: quote_spanned! {span=>
                #items: impl #krate::__private::IntoItems<#named_item>
                    + ::core::marker::Send + 'static
            },
            lent: false,
            predicates,
        },
    })
}

/// What a fallible function's companions return: the batch, and one value's type.
struct Fallible {
    batch: TokenStream,
    ok: TokenStream,
}

/// For a function returning `Result<T, E>`, `Option<T>` or an alias such as `io::Result<T>`
/// (named through `TryItem`): the batch type (`Result<Vec<T>, E>`, `Option<Vec<T>>`) and `T`;
/// `None` for any other return type.
fn fallible(ty: &syn::Type, krate: &TokenStream) -> Option<Fallible> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let args: Vec<&syn::Type> = match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    match (last.ident.to_string().as_str(), args.as_slice()) {
        ("Option", [t]) => Some(Fallible {
            batch: quote!(::core::option::Option<::std::vec::Vec<#t>>),
            ok: t.to_token_stream(),
        }),
        ("Result", [t, e]) => Some(Fallible {
            batch: quote!(::core::result::Result<::std::vec::Vec<#t>, #e>),
            ok: t.to_token_stream(),
        }),
        ("Result", [t]) => Some(Fallible {
            batch: quote!(<#ty as #krate::__private::TryItem>::Batch),
            ok: t.to_token_stream(),
        }),
        _ => None,
    }
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(group) = &tt {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tt = proc_macro2::TokenTree::Group(inner);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// An associated function without `self` is recognisable when its signature or body
/// mentions `Self`, or when the user says so (`associated`); it is then called through
/// `Self` too.
fn is_associated(func: &ItemFn, shape: &Shape, options: &Options) -> bool {
    matches!(shape.receiver, Receiver::None)
        && (options.associated
            || signature_mentions_self(&func.sig)
            || body_mentions_self(&func.block))
}

/// `true` when `ty` has no lifetime, or is a reference to a type without one: an `impl
/// Trait` parameter can name it with one fresh lifetime and no outlives bounds.
fn at_most_one_lifetime(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Reference(reference) => !crate::types::has_lifetimes(&reference.elem),
        other => !crate::types::has_lifetimes(other),
    }
}

/// `true` for a primitive scalar or `str`, by value or behind references: a shared
/// argument of the item's type (`offset: &f64` beside `x: &f64`) is common for those, and a
/// plain signature reads better than the second-item check.
fn is_primitive(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Reference(reference) => is_primitive(&reference.elem),
        syn::Type::Path(p) if p.qself.is_none() => p.path.get_ident().is_some_and(|ident| {
            matches!(
                ident.to_string().as_str(),
                "u8" | "u16"
                    | "u32"
                    | "u64"
                    | "u128"
                    | "usize"
                    | "i8"
                    | "i16"
                    | "i32"
                    | "i64"
                    | "i128"
                    | "isize"
                    | "f32"
                    | "f64"
                    | "bool"
                    | "char"
                    | "str"
            )
        }),
        _ => false,
    }
}

/// `true` when two types are written the same way.
fn same_type(a: &syn::Type, b: &syn::Type) -> bool {
    a.to_token_stream().to_string() == b.to_token_stream().to_string()
}

/// The companion's documentation: what it does, which arguments every item shares, where
/// it came from.
fn doc(name: &str, associated: bool, items: &syn::Ident, shared: &[String], kind: &Kind) -> String {
    let link = if associated {
        format!("Self::{name}")
    } else {
        name.to_owned()
    };
    let mut doc = match kind {
        Kind::Map => format!(
            "Runs [`{name}`]({link}) on every item of `{items}` and returns the results in \
             input order, in parallel when amorsize measures that it pays."
        ),
        Kind::Try { .. } => format!(
            "Runs [`{name}`]({link}) on the items of `{items}` until one fails, in parallel \
             when amorsize measures that it pays: the values in input order if every item \
             succeeds, else the failure. After a failure no item starts on any thread; a \
             loop returns the first failure in input order, a parallel run the earliest \
             among the items that ran."
        ),
        Kind::Reduce => format!(
            "Runs [`{name}`]({link}) on every item of `{items}` and combines the results with \
             `op`, starting from `identity()`, in parallel when amorsize measures that it \
             pays, without building a `Vec`: `items.map({name}).fold(identity(), op)` for an \
             associative `op` that leaves `identity()` unchanged (it need not be \
             commutative: results are combined in input order). An empty input gives \
             `identity()`."
        ),
        Kind::Fold => format!(
            "Runs [`{name}`]({link}) on every item of `{items}` and folds the results into an \
             accumulator: `fold(acc, result)` from `init()`, in parallel when amorsize \
             measures that it pays, each piece into its own accumulator, joined in input \
             order with `combine`; like rayon's `map({name}).fold(init, fold).reduce(init, \
             combine)`. For a word count, a histogram, any accumulator that is not the \
             per-item result."
        ),
        Kind::TryReduce { .. } => format!(
            "Runs [`{name}`]({link}) on the items of `{items}` and combines their values with \
             `op` from `identity()`, like the `_reduce` companion, until one fails: the \
             combined value, or the failure (after which no item starts on any thread)."
        ),
        Kind::Async => format!(
            "Runs [`{name}`]({link}) on every item of `{items}` with the plan amorsize tuned \
             for it, without blocking the executor, and returns a future of the results in \
             input order: a call planned in parallel runs on rayon's pool while the task \
             waits; a call planned as a loop runs where it is polled, at most \
             `amorsize::future::SLICE` of work per poll (see `amorsize::future`). Dropping \
             the future stops the map; a panic in `{name}` resumes where it is awaited. Any \
             executor: it is woken through std's `Waker`."
        ),
        Kind::TryAsync { .. } => format!(
            "Runs [`{name}`]({link}) on the items of `{items}` until one fails, without \
             blocking the executor, like the `_async` companion: a future of every value, or \
             the first failure (after which no item starts)."
        ),
        Kind::Iter => format!(
            "Runs [`{name}`]({link}) on the items of the iterator `{items}`, lazily and in \
             input order: the returned iterator reads the input in batches on the thread \
             that calls `next()`, and maps each batch in parallel when amorsize measures \
             that it pays, reading the next batch meanwhile. Memory stays bounded (a few \
             batches, sized from the learned cost); nothing runs between calls to `next()`, \
             so dropping it stops the work; a panic in `{name}` reaches the caller at the \
             `next()` that would have returned that item's result."
        ),
    };
    match shared {
        [] => {}
        [one] => doc.push_str(&format!(" {one} is the same for every item.")),
        many => doc.push_str(&format!(
            " {} and {} are the same for every item.",
            many[..many.len() - 1].join(", "),
            many[many.len() - 1]
        )),
    }
    doc.push_str(
        "\n\nGenerated by `#[amorsize::parallel]`; see `amorsize::report()` for what it decided \
         and why.",
    );
    doc
}
