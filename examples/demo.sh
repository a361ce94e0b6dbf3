#!/usr/bin/env bash
# What `make demo` shows: two services of our own, each scaffolded from its one xproto file by
# `xsgen scaffold` (the built-in core models are read first), filled in, and run.
# Everything is written under examples/build/ (gitignored); no process outlives the script.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
BUILD=examples/build
rm -rf "$BUILD"
mkdir -p "$BUILD"

say() { printf '\n== %s\n' "$*"; }

# Scaffold examples/$1/$1.xproto into $BUILD/$1, copy in the example's filled-in code, quiet the logs.
scaffold() {
    local name=$1
    say "xsgen scaffold examples/$name/$name.xproto -o $BUILD/$name"
    "$BIN/xsgen" scaffold "examples/$name/$name.xproto" -o "$BUILD/$name" | tail -n 1
    for dir in steps model_policies event_steps; do
        if [ -d "examples/$name/$dir" ]; then cp "examples/$name/$dir"/*.py "$BUILD/$name/$dir/"; fi
    done
    # The run's log goes to a file, so that the status tables below stay readable.
    sed -i 's|^  destination: stderr|  destination: sync.log|' "$BUILD/$name/config.yaml"
}

run_and_show() {
    local config=$1
    say "xsync run $config --until-idle"
    "$BIN/xsync" run "$config" --until-idle --timeout 30
    say "xsync status $config"
    "$BIN/xsync" status "$config"
}

# --- hello: a 3-level chain, a failure held back, backoff, an event step -------------------
scaffold hello
say "populate: objects, and one greeting from an event"
"$BIN/python" examples/hello/populate.py "$BUILD/hello/config.yaml"
run_and_show "$BUILD/hello/config.yaml"
say "why: each object's backend_status"
"$BIN/python" examples/show_objects.py "$BUILD/hello/config.yaml" Country Greeting
say "backend after the first run"
ls "$BUILD/hello/backend"
say "2 s later the failures are due again: they fail again and back off for longer"
sleep 2.2
run_and_show "$BUILD/hello/config.yaml"

# --- noticeboard: a service, its instances, a model policy that builds posters -------------
scaffold noticeboard
say "populate"
"$BIN/python" examples/noticeboard/populate.py "$BUILD/noticeboard/config.yaml"
run_and_show "$BUILD/noticeboard/config.yaml"
"$BIN/python" examples/show_objects.py "$BUILD/noticeboard/config.yaml" Ink Notice Poster
for page in "$BUILD"/noticeboard/site/*.html; do echo "$page: $(cat "$page")"; done

# --- the generated tests and the regeneration check ------------------------------------------
say "the generated tests of hello (as generated, on a fresh store)"
"$BIN/xsgen" scaffold examples/hello/hello.xproto -o "$BUILD/hello-pristine" >/dev/null
"$BIN/python" -m pytest -q -p no:cacheprovider "$BUILD/hello-pristine/tests" | tail -n 1
say "xsgen scaffold --check: in sync"
"$BIN/xsgen" scaffold examples/hello/hello.xproto -o "$BUILD/hello" --check && echo "(in sync: exit 0)"

say "the dependency graph of hello (Mermaid; xsgen graph --format svg draws it with Graphviz)"
"$BIN/xsgen" graph examples/hello/hello.xproto --format mermaid
if command -v dot >/dev/null; then
    "$BIN/xsgen" graph examples/hello/hello.xproto --format svg -o "$BUILD/hello/model-deps.svg"
    echo "(drawn to $BUILD/hello/model-deps.svg)"
fi

cat <<NEXT

== What next
  Watch a synchronizer live:   $BIN/xsync ui $BUILD/noticeboard/config.yaml
  Read the core models:        $BIN/xsgen core | less
  Write your own service:      $BIN/xsgen scaffold my-service.xproto -o my-service/
                               then fill in my-service/steps/ and run
                               $BIN/xsync run my-service/config.yaml --until-idle
  The journey, step by step:   README.md ("The journey of a service developer")
NEXT
