//! `#[gosim::test]`: an `async fn name(sim: Sim) { ... }` becomes a `#[test] fn name()` that
//! sweeps the body over seeds with `gosim::Check` (re-exported by gosim as `gosim::test`; use it
//! through gosim, not this crate).
//!
//! ```ignore
//! use gosim::Sim;
//!
//! #[gosim::test(runs = 300, strategy = "pct:3")]
//! async fn exactly_once(sim: Sim) {
//!     let ch = sim.channel::<i64>(1);
//!     ch.send(1).await.expect("open");
//!     assert_eq!(ch.recv().await, Some(1));
//! }
//! ```
//!
//! Arguments (all optional): `runs = N`, `seed = N` (the first seed), `strategy = "TEXT"` (the
//! CLI's `--strategy` text), `max_steps = N`, `step_cost_us = N` (virtual microseconds per
//! scheduling step), `shrink_runs = N`. A bad argument is a compile error pointing at it.

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitInt, LitStr, ReturnType, parse_macro_input};

/// The strategy families `--strategy` accepts (the full text is checked when the test runs).
const FAMILIES: [&str; 5] = ["random", "pct", "cost", "jitter", "portfolio"];

/// Marks an `async fn name(sim: Sim)` as a gosim seed sweep (see the crate documentation).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut calls = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "runs" | "seed" | "max_steps" | "step_cost_us" | "shrink_runs" => {
                let lit: LitInt = meta.value()?.parse()?;
                let n: u64 = lit.base10_parse()?;
                calls.push(match key.as_str() {
                    "runs" if n == 0 => {
                        return Err(syn::Error::new(lit.span(), "runs must be at least 1"));
                    }
                    "runs" => quote!(.runs(#n)),
                    "seed" => quote!(.seed(#n)),
                    "max_steps" => quote!(.max_steps(#n)),
                    "step_cost_us" => quote!(.step_cost(::core::time::Duration::from_micros(#n))),
                    _ => {
                        let n = n as usize;
                        quote!(.shrink_runs(#n))
                    }
                });
                Ok(())
            }
            "strategy" => {
                let lit: LitStr = meta.value()?.parse()?;
                let text = lit.value();
                let family = text.split(':').next().unwrap_or("");
                if !FAMILIES.contains(&family) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "unknown strategy {text:?}: expected random, pct[:DEPTH[:STEPS]], \
                             cost:MS, jitter:MS or portfolio[:exact][:STEPS]"
                        ),
                    ));
                }
                calls.push(quote!(.strategy(#lit)));
                Ok(())
            }
            _ => Err(meta.error(
                "unknown argument of #[gosim::test]: expected runs, seed, strategy, max_steps, \
                 step_cost_us or shrink_runs",
            )),
        }
    });
    parse_macro_input!(args with parser);
    let function = parse_macro_input!(item as ItemFn);
    match expand(function, &calls) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The `#[test] fn` that runs the sweep.
fn expand(
    function: ItemFn,
    calls: &[proc_macro2::TokenStream],
) -> syn::Result<proc_macro2::TokenStream> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[gosim::test] needs an `async fn name(sim: Sim)`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[gosim::test] functions take no generic parameters",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        return Err(syn::Error::new(
            ty.span(),
            "#[gosim::test] functions return nothing (fail with a panic or an assertion)",
        ));
    }
    let arg = match (sig.inputs.len(), sig.inputs.first()) {
        (1, Some(FnArg::Typed(arg))) => arg,
        _ => {
            return Err(syn::Error::new(
                sig.inputs
                    .span()
                    .join(sig.ident.span())
                    .unwrap_or(sig.ident.span()),
                "#[gosim::test] functions take exactly one argument: `sim: Sim`",
            ));
        }
    };
    let (pat, ty) = (&arg.pat, &arg.ty);
    let name = &sig.ident;
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            let mut __gosim_check = ::gosim::Check::new()
                .name_in(::core::module_path!(), ::core::stringify!(#name))
                #(#calls)*;
            if let ::core::option::Option::Some(__gosim_dir) =
                ::core::option_env!("CARGO_TARGET_TMPDIR")
            {
                __gosim_check = __gosim_check.schedule_dir(__gosim_dir);
            }
            __gosim_check.run(|#pat: #ty| async move #block);
        }
    })
}
