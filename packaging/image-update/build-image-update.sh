#!/bin/sh
# Build the example image-update packages (ovirt-node-ng-image-update and its -squashfs subpackage) around an image
# made by the test-image builder (or any oVirt Node squashfs with IMAGE.sha256 and IMAGE.sig beside it).
#
#   packaging/image-update/build-image-update.sh IMAGE OUTDIR [GPG_NAME [GNUPGHOME]]
#
# The package's Version-Release are the image NVR's (from the file name NVR.squashfs.img). With GPG_NAME the
# packages are signed (rpmsign --addsign) with that key of GNUPGHOME. Prints the built package paths.
# SIDECARS=no: ship the image without IMAGE.sha256 and IMAGE.sig, as oVirt's own packages do (the daemon then takes
# the checksum from the package header and the package's signature for the image's; docs/UPDATES.md).
set -eu
sidecars=1
[ "${SIDECARS:-yes}" = no ] && sidecars=0
image=$1 outdir=$2 gpg_name=${3:-} gnupghome=${4:-${GNUPGHOME:-}}
here=$(cd "$(dirname "$0")" && pwd)
file=$(basename "$image")
nvr=${file%.squashfs.img}
[ "$nvr" != "$file" ] || { echo "build-image-update.sh: $file is not named NVR.squashfs.img" >&2; exit 2; }
release=${nvr##*-}
rest=${nvr%-*}
version=${rest##*-}
files="$image"
[ "$sidecars" = 1 ] && files="$image $image.sha256 $image.sig"
for f in $files; do
    [ -f "$f" ] || { echo "build-image-update.sh: $f is missing" >&2; exit 2; }
done
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES" "$outdir"
cp $files "$top/SOURCES/"
rpmbuild --quiet -bb \
    --define "_topdir $top" \
    --define "image_file $file" \
    --define "image_version $version" \
    --define "image_release $release" \
    --define "sidecars $sidecars" \
    "$here/ovirt-node-ng-image-update.spec" >&2
for rpm in "$top"/RPMS/noarch/*.rpm; do
    if [ -n "$gpg_name" ]; then
        GNUPGHOME=$gnupghome rpmsign --define "__gpg /usr/bin/gpg" --define "_gpg_name $gpg_name" --addsign "$rpm" >&2
    fi
    cp "$rpm" "$outdir/"
    echo "$outdir/$(basename "$rpm")"
done
