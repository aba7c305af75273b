.PHONY: develop fmt lint test test-rust bench

develop:
	maturin develop --release

fmt:
	cargo fmt
	ruff format python tests benches

lint:
	cargo fmt --check
	# One clippy pass: the python feature only adds src/python/ (lib.rs holds the crate's one cfg), so this pass
	# lints every line the pure-Rust build compiles too.
	cargo clippy --all-targets -- -D warnings
	ruff check python tests benches
	ruff format --check python tests benches
	mypy
	python -m mypy.stubtest ticklake._core

test:
	python -m pytest

test-rust:
	cargo test --no-default-features

bench:
	cargo bench --no-default-features --bench kernels
	python benches/compare.py
	python benches/lake_io.py
	python benches/import_api.py
	python benches/rebuild.py
