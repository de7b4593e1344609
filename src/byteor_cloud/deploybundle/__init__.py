"""Deploy bundles (PRODUCT.md §9): building the signed, reproducible `tar.gz` an agent
activates, and reading it back safely and verifying it — pure, in memory, no I/O.

`build.build_bundle` is what the `bundle_build` job calls; `verify.open_bundle` is what
the reference agent (and the tests that play agents) call. `format` holds the entry names
and the canonical encodings both sides share, `archive` the reproducible writer and the
bounded, strict reader, `errors` the stable failure codes. See docs/deploy-bundle.md.
"""
