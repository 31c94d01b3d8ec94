#!/bin/sh
# tools/spec-build.sh: apply spec/*.patch to a virtio-spec checkout and
# build the specification (PDF and HTML) with the patches applied.
#
#   tools/spec-build.sh VIRTIO_SPEC_CHECKOUT [BASE_COMMIT]
#
# VIRTIO_SPEC_CHECKOUT is a clone of the OASIS virtio-spec repository.
# BASE_COMMIT defaults to the base-commit: line of
# spec/0000-cover-letter.patch.  The checkout itself is left alone: the
# patches are applied with git am in a temporary detached worktree,
# which is removed at exit unless KEEP=1 is set (then its path is
# printed so the PDF and HTML can be looked at).
#
# Exits non-zero if the patches do not apply, if git diff --check
# finds whitespace errors, or if either build fails (a LaTeX error, a
# missing output file, or HTML that tex4ht wrote with NUL characters).
# Not part of make check: the build needs TeX Live, tex4ht and the
# fonts listed in spec/README.md, and takes several minutes.
set -eu

usage() {
	echo "usage: $0 VIRTIO_SPEC_CHECKOUT [BASE_COMMIT]" >&2
	exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	usage
fi

here=$(cd "$(dirname "$0")/.." && pwd)
specrepo=$(cd "$1" && pwd)
git -C "$specrepo" rev-parse --git-dir >/dev/null 2>&1 || {
	echo "$0: $specrepo is not a git checkout" >&2
	exit 2
}

if [ $# -eq 2 ]; then
	base=$2
else
	base=$(sed -n 's/^base-commit: //p' "$here/spec/0000-cover-letter.patch")
	[ -n "$base" ] || {
		echo "$0: no base-commit: line in spec/0000-cover-letter.patch" >&2
		exit 2
	}
fi
git -C "$specrepo" cat-file -e "$base^{commit}" 2>/dev/null || {
	echo "$0: commit $base is not in $specrepo (fetch it first)" >&2
	exit 1
}

# The cover letter has no diff; git am is given the patches only.
patches=
for p in "$here"/spec/[0-9][0-9][0-9][0-9]-*.patch; do
	case $p in
	*/0000-*) ;;
	*) [ -f "$p" ] && patches="$patches $p" ;;
	esac
done
[ -n "$patches" ] || { echo "$0: no patches in spec/" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/spec-build.XXXXXX")
cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then
		echo "spec-build: worktree kept in $work/tree"
	else
		git -C "$specrepo" worktree remove --force "$work/tree" \
			>/dev/null 2>&1 || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

git -C "$specrepo" worktree add --detach "$work/tree" "$base" >/dev/null
cd "$work/tree"
# shellcheck disable=SC2086 # one path per word, none has spaces
git -c user.name=spec-build -c user.email=spec-build@localhost \
	am --quiet $patches
git diff --check "$base" HEAD
echo "spec-build: applied $(git rev-list --count "$base"..HEAD) patch(es) to $base"

specdoc=$(cat REVISION)

# The upstream scripts ignore the exit status of (xe|ht)latex, so the
# outputs and the logs are checked here.  Standard input is /dev/null so
# that a LaTeX error stops the run instead of waiting for input.
echo "spec-build: building HTML (makehtml.sh)"
./makehtml.sh </dev/null >"$work/html.out" 2>&1 || {
	tail -n 40 "$work/html.out"
	echo "spec-build: makehtml.sh failed" >&2
	exit 1
}
if grep -n '^! ' "$work/html.out"; then
	echo "spec-build: LaTeX errors in the HTML build" >&2
	exit 1
fi
[ -s "$specdoc.html" ] || { echo "spec-build: no $specdoc.html" >&2; exit 1; }
if [ "$(file -b "$specdoc.html")" = data ]; then
	echo "spec-build: $specdoc.html has NUL characters (tex4ht fonts)" >&2
	exit 1
fi

echo "spec-build: building PDF (makepdf.sh)"
./makepdf.sh </dev/null >"$work/pdf.out" 2>&1 || {
	tail -n 40 "$work/pdf.out"
	echo "spec-build: makepdf.sh failed" >&2
	exit 1
}
if grep -n '^! ' "$specdoc.log"; then
	echo "spec-build: LaTeX errors in the PDF build" >&2
	exit 1
fi
[ -s "$specdoc.pdf" ] || { echo "spec-build: no $specdoc.pdf" >&2; exit 1; }
if grep -q 'There were undefined references' "$specdoc.log"; then
	grep 'undefined' "$specdoc.log" >&2
	echo "spec-build: undefined references in the PDF" >&2
	exit 1
fi

echo "spec-build: OK: $specdoc.pdf and $specdoc.html built"
if [ "${KEEP:-0}" = 1 ]; then
	cp "$work/html.out" "$work/pdf.out" "$work/tree/"
fi
