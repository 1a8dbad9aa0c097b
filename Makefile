# samia: `make demo` and `make test` each create .venv/ when missing and install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.samia-installed
DEMO_DATA := samia/data/samples/colin27_aal_2d
DEMO_OUT ?= runs/demo

SYSTEM_PACKAGES := chromium mricron-data xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
	libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 \
	libxcb-cursor0 libxcb-xfixes0 libdbus-1-3 libfontconfig1

.PHONY: setup system demo test lint docs benchmarks samples

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# torch first, pinned, so no other dependency can pull another torch build
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	# Meta's sam2 is an sdist that asks for torch at build time: built here against the torch above,
	# without its CUDA extension, so pip never fetches another torch build for it
	SAM2_BUILD_CUDA=0 $(PY) -m pip install --quiet --no-build-isolation --no-deps "sam2>=1.1.0"
	$(PY) -m pip install --quiet -e ".[test]"
	# MONAI Label's own client for the contract tests: the package pins old numpy, pydicom and a
	# torch build, so it comes without its dependencies (its client needs only requests)
	$(PY) -m pip install --quiet --no-deps "monailabel>=0.8"
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests use: headless Chromium (report test), mricron-data (sample rebuild
# test), a virtual display with Mesa's OpenGL and Qt's X libraries (the napari plugin test).
# Installed when missing and running as root; otherwise those tests skip with a reason.
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	elif [ -n "$$missing" ]; then echo "note: not installed: $$missing (some tests will skip)"; fi

demo: setup
	$(VENV)/bin/samia evaluate --data $(DEMO_DATA) --model litemedsam --out $(DEMO_OUT) --save-masks \
		--strategy box --strategy point1 --strategy point5_neg5 --strategy box_jitter --strategy clicks \
		--jitter-repeats 1 --max-clicks 3
	$(VENV)/bin/samia report $(DEMO_OUT) --out $(DEMO_OUT)/report

test: setup system lint docs
	$(PY) -m pytest -q

# Every benchmark prints "ratio=... target... PASS|MISS" last and exits 1 on a miss; this runs all
# of them, lists which pass, and fails if any missed.
benchmarks: setup
	@failed=""; for script in benchmarks/[!_]*.py; do echo "== $$script"; \
		$(PY) $$script || failed="$$failed $$script"; done; \
	echo "== summary"; for script in benchmarks/[!_]*.py; do \
		case "$$failed" in *"$$script"*) echo "MISS $$script";; *) echo "PASS $$script";; esac; done; \
	$(PY) benchmarks/_readme_table.py; test -z "$$failed"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# the documentation site (docs/, mkdocs.yml) into site/; strict: a broken link or reference fails
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

samples: setup system
	$(PY) scripts/build_samples.py
