# The two set-up commands of the README. Each creates .venv with python3.12 and installs the package.
.PHONY: demo test lint

demo:
	scripts/venv train,dev
	scripts/quickstart

test:
	scripts/venv train,dev
	.venv/bin/python -m pytest -n 2 --dist loadgroup -q

lint:
	scripts/venv train,dev
	.venv/bin/ruff check bimix_bayes tests benchmarks
