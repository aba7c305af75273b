.PHONY: develop fmt lint test test-rust bench

develop:
	maturin develop --release

fmt:
	cargo fmt
	ruff format python tests benches

lint:
	cargo fmt --check
	# One clippy pass: the python feature only adds src/python/ (lib.rs holds the crate's one cfg), so this pass
	# lints every line the pure-Rust build compiles too. --release: the build scripts (zstd's C library, ring) and
	# proc macros of the release build (the wheel's) are reused, not built again in the dev profile.
	cargo clippy --release --all-targets -- -D warnings
	ruff check python tests benches
	ruff format --check python tests benches
	mypy
	python -m mypy.stubtest ticklake._core

test:
	python -m pytest

# The release profile: the tests run the code users run, and reuse the wheel's build of every dependency (Cargo.toml
# asks the pure-Rust build for the wheel's feature sets).
test-rust:
	cargo test --release --no-default-features

bench:
	cargo bench --no-default-features --bench kernels
	python benches/compare.py
	python benches/lake_io.py
	python benches/import_api.py
	python benches/rebuild.py
