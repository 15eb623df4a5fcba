#!/usr/bin/env bash
# Prove the edge runtime on a Raspberry Pi's CPU and OS (Debian 12 bookworm arm64,
# Python 3.11) under qemu user emulation: build (once, cached) a minimal bookworm
# arm64 root, install the aarch64 wheels of the edge install into two targets
# (ai-edge-litert + numpy 2; tflite-runtime 2.14 + numpy 1), score real films with
# the shipped int8 models in each, and compare with the same smoke run on the host.
# See docs/pi-emulation.md. Run from anywhere; exits non-zero on any failure.
#
# Environment:
#   PNEUMO_HOST_PYTHON    host Python with a TFLite runtime, numpy and Pillow (default: python3)
#   PNEUMO_ARM64_CACHE    cache folder for the root and wheels (default: ~/.cache/pneumo-arm64)
#   PNEUMO_ARM64_REFRESH  1: download the wheels again even if a cached set is fresh
#   PNEUMO_PI             5 (default; Cortex-A76) or 4 (Cortex-A72): the CPU qemu emulates
#   PNEUMO_DATA           the films (default: ../shared/data beside the checkout)
#   PNEUMO_DEBIAN_MIRROR  (default: http://deb.debian.org/debian)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$REPO/.ci/pi_arm64
HOST_PYTHON=${PNEUMO_HOST_PYTHON:-python3}
CACHE=${PNEUMO_ARM64_CACHE:-$HOME/.cache/pneumo-arm64}
DATA=${PNEUMO_DATA:-$REPO/../shared/data}
MIRROR=${PNEUMO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT=$CACHE/bookworm-arm64
WORK=$CACHE/work
# What the root is built from; a change rebuilds it.
ROOT_SPEC="bookworm arm64 minbase python3.11 $MIRROR"
WHEELS_MAX_AGE_DAYS=7

case ${PNEUMO_PI:-5} in
  5) QEMU_CPU_MODEL=cortex-a76 ;;
  4) QEMU_CPU_MODEL=cortex-a72 ;;
  *) echo "pi_arm64: PNEUMO_PI must be 4 or 5, not ${PNEUMO_PI}" >&2; exit 2 ;;
esac
CPUINFO=$HERE/cpuinfo-pi${PNEUMO_PI:-5}.txt

# pip's target platform: every manylinux tag bookworm's glibc 2.36 can run. Listing
# only manylinux2014 would silently pick old releases (tflite-runtime 2.14's wheel is
# manylinux_2_34, ai-edge-litert's manylinux_2_27).
PLATFORM=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
          --platform manylinux2014_aarch64)
for minor in $(seq 17 36); do PLATFORM+=(--platform "manylinux_2_${minor}_aarch64"); done

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
started=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - started)); }
fail() { echo "pi_arm64: $*" >&2; exit 1; }
pip_host() { "$HOST_PYTHON" -m pip --disable-pip-version-check "$@"; }

install_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

# A Debian 12 arm64 root with Python 3.11, built without running arm64 code:
# debootstrap's first stage only downloads, then dpkg -x unpacks every package
# (no maintainer scripts run, which is all the smoke needs).
build_root() {
  if [ -f "$ROOT/.pneumo-root" ] && [ "$(cat "$ROOT/.pneumo-root")" = "$ROOT_SPEC" ]; then
    return
  fi
  step "building the bookworm arm64 root in $ROOT"
  local partial=$ROOT.partial
  $SUDO rm -rf "$partial" "$ROOT"
  mkdir -p "$CACHE"
  PATH=$PATH:/usr/sbin:/sbin $SUDO debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3.11 bookworm "$partial" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; fail "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  local deb count=0
  for deb in "$partial"/var/cache/apt/archives/*.deb; do
    $SUDO dpkg -x "$deb" "$partial" || fail "cannot unpack $deb"
    count=$((count + 1))
  done
  $SUDO rm -f "$partial"/var/cache/apt/archives/*.deb
  # debootstrap may leave /proc as a symlink to the host's; the fake cpuinfo needs a folder.
  [ -L "$partial/proc" ] && $SUDO rm "$partial/proc"
  $SUDO mkdir -p "$partial/proc"
  [ -z "$SUDO" ] || $SUDO chown -R "$(id -u):$(id -g)" "$partial"
  [ -x "$partial/usr/bin/python3.11" ] || fail "the root has no usr/bin/python3.11"
  echo "$ROOT_SPEC" >"$partial/.pneumo-root"
  mv "$partial" "$ROOT"
  echo "unpacked $count packages"
}

# The project itself, built once per run from the working tree (copied, so the
# checkout gets no build/ folder), then installed --no-deps into each target.
build_project() {
  step "building the project wheel"
  rm -rf "$WORK/src" "$WORK/dist"
  mkdir -p "$WORK/src"
  tar -C "$REPO" --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=./runs --exclude=./test-artifacts --exclude=__pycache__ -cf - . | tar -C "$WORK/src" -xf -
  pip_host wheel -q --no-deps -w "$WORK/dist" "$WORK/src" || fail "the project wheel does not build"
  PROJECT_WHEEL=$(ls "$WORK"/dist/pneumo_edge-*.whl)
  rm -rf "$WORK/host"
  pip_host install -q --no-warn-conflicts --no-deps --target "$WORK/host" "$PROJECT_WHEEL"
}

# The project's own requirements (from its wheel), with the runtime swapped per run.
requirements() {  # $1: ai_edge_litert | tflite_runtime
  "$HOST_PYTHON" - "$PROJECT_WHEEL" "$1" <<'EOF'
import sys, zipfile
wheel, run = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
reqs = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
reqs = [r for r in reqs if "extra ==" not in r]
if run == "tflite_runtime":
    reqs = [r for r in reqs if not r.lower().startswith(("ai-edge-litert", "ai_edge_litert"))]
    reqs += ["tflite-runtime==2.14.0", "numpy<2"]
else:
    reqs += ["numpy>=2"]
print("\n".join(reqs))
EOF
}

# aarch64 wheels for one run in $WORK/<run>/deps, reused while the requirements are
# unchanged and the set is under a week old; the project goes in $WORK/<run>/project.
install_target() {  # $1: run name
  local run=$1 dir=$WORK/$1
  mkdir -p "$dir"
  requirements "$run" >"$dir/requirements.new"
  if [ "${PNEUMO_ARM64_REFRESH:-0}" = 1 ] || [ ! -f "$dir/deps/.complete" ] \
     || ! cmp -s "$dir/requirements.new" "$dir/requirements.txt" \
     || [ -n "$(find "$dir/deps/.complete" -mtime +$WHEELS_MAX_AGE_DAYS)" ]; then
    step "$run: downloading and installing aarch64 wheels"
    rm -rf "$dir/wheels" "$dir/deps"
    pip_host download -q "${PLATFORM[@]}" -d "$dir/wheels" -r "$dir/requirements.new" \
      || fail "$run: no complete set of cp311 aarch64 wheels for: $(tr '\n' ' ' <"$dir/requirements.new")"
    pip_host install -q --no-warn-conflicts "${PLATFORM[@]}" --no-index --find-links "$dir/wheels" --target "$dir/deps" \
      -r "$dir/requirements.new" || fail "$run: the downloaded wheels do not install"
    mv "$dir/requirements.new" "$dir/requirements.txt"
    touch "$dir/deps/.complete"
  else
    rm "$dir/requirements.new"
  fi
  (cd "$dir/wheels" && ls ./*.whl | sed 's|^\./|  |')
  rm -rf "$dir/project"
  pip_host install -q --no-warn-conflicts --no-deps --target "$dir/project" "$PROJECT_WHEEL"
}

# One smoke run on emulated arm64. No binfmt_misc is assumed, so the guest Python
# must not start another arm64 program; QEMU_CPU matches the fake /proc/cpuinfo
# (qemu 7.2 would show the guest the host's x86 cpuinfo, on which ai-edge-litert
# crashes, and its default CPU model gives wrong int8 results).
run_arm64() {  # $1: run name, $2: numpy major
  local run=$1
  step "$run: scoring on emulated arm64 ($QEMU_CPU_MODEL)"
  env -i PATH=/usr/bin:/bin HOME="$HOME" LANG=C.UTF-8 QEMU_CPU=$QEMU_CPU_MODEL PYTHONNOUSERSITE=1 \
    PYTHONPATH="$WORK/$run/project:$WORK/$run/deps" \
    "$(command -v qemu-aarch64-static)" -L "$ROOT" "$ROOT/usr/bin/python3.11" \
    "$HERE/smoke.py" score --data "$DATA" --runtime "$run" --expect-numpy "$2" >"$WORK/$run.json"
}

[ -d "$DATA" ] || fail "no film data at $DATA (set PNEUMO_DATA)"
DATA=$(cd "$DATA" && pwd)
install_tools
build_root
cp "$CPUINFO" "$ROOT/proc/cpuinfo"  # qemu -L shows it to the guest as /proc/cpuinfo
build_project
install_target ai_edge_litert
install_target tflite_runtime

step "host: scoring the reference ($("$HOST_PYTHON" -c 'import platform; print(platform.machine())'))"
for kernels in default reference; do  # reference: the arithmetic tflite-runtime's arm64 kernels compute
  PYTHONPATH="$WORK/host" "$HOST_PYTHON" "$HERE/smoke.py" score --data "$DATA" --kernels $kernels \
    >"$WORK/host-$kernels.json" || fail "the host reference run ($kernels kernels) failed"
done

step "arm64 runs, each compared with the host run of the same int8 arithmetic"
status=0 failed=()
for spec in ai_edge_litert:2:default tflite_runtime:1:reference; do  # run:numpy major:host kernels to match
  IFS=: read -r run numpy kernels <<<"$spec"
  if run_arm64 "$run" "$numpy"; then
    "$HOST_PYTHON" "$HERE/smoke.py" compare "$WORK/host-$kernels.json" "$WORK/$run.json" || status=1
  else
    failed+=("$run (exit $?)")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "pi_arm64: arm64 runs that crashed or failed: ${failed[*]}" >&2
  status=1
fi
echo "pi_arm64: done in $((SECONDS - started)) s"
exit $status
