#!/bin/sh
# Build a real-speech folder from Debian's recorded Asterisk prompts (asterisk-core-sounds-*-g722:
# studio-recorded telephone prompts, 16 kHz G.722, CC-BY-SA-3.0), decoded to 16 kHz mono WAV with
# the ffmpeg bundled in node_modules. The folder is an input for any ctspeech command:
#
#   scripts/asterisk-corpus.sh corpora/asterisk-en
#   npx ctspeech pipeline pipelines/speech-compare-cpu.yaml --data corpora/asterisk-en
#
# PKG picks another language (asterisk-core-sounds-fr-g722, -es-, -ru-, ...). Prompts shorter than
# MIN_SECONDS (digits, letters, beeps) are left out. Uses the installed package when present,
# otherwise `apt-get download` (no root needed) and unpacks it in a temporary folder.
set -eu
OUT=${1:-corpora/asterisk-en}
PKG=${PKG:-asterisk-core-sounds-en-g722}
MIN_SECONDS=${MIN_SECONDS:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
FFMPEG=$(cd "$HERE" && node -e "process.stdout.write(require('@ffmpeg-installer/ffmpeg').path)")

TMP=""
if dpkg -s "$PKG" >/dev/null 2>&1; then
  ROOT=""
else
  TMP=$(mktemp -d)
  (cd "$TMP" && apt-get download "$PKG") || { echo "asterisk-corpus: cannot download $PKG (run apt-get update first?)" >&2; exit 1; }
  dpkg-deb -x "$TMP"/*.deb "$TMP/root"
  ROOT=$TMP/root
fi
SOUNDS=$ROOT/usr/share/asterisk/sounds
[ -d "$SOUNDS" ] || { echo "asterisk-corpus: $PKG holds no $SOUNDS" >&2; exit 1; }

mkdir -p "$OUT"
# G.722 here is 64 kbit/s: 8,000 bytes per second of audio.
MIN_BYTES=$((MIN_SECONDS * 8000))
LIST=$(mktemp)
find "$SOUNDS" -type f \( -name '*.g722' -o -name '*.722' \) -size +"${MIN_BYTES}"c | sort > "$LIST"
while IFS= read -r f; do
  rel=${f#"$SOUNDS"/}
  dst="$OUT/${rel%.*}.wav"
  [ -s "$dst" ] && continue
  mkdir -p "$(dirname "$dst")"
  "$FFMPEG" -nostdin -v error -y -f g722 -i "$f" -ar 16000 -ac 1 -c:a pcm_s16le "$dst.tmp.wav" && mv "$dst.tmp.wav" "$dst"
done < "$LIST"
rm -f "$LIST"
COPYRIGHT=$ROOT/usr/share/doc/$PKG/copyright
[ -f "$COPYRIGHT" ] && cp "$COPYRIGHT" "$OUT/COPYRIGHT-$PKG.txt"
count=$(find "$OUT" -name '*.wav' | wc -l)
[ -n "$TMP" ] && rm -rf "$TMP"
echo "asterisk-corpus: $count prompts of at least $MIN_SECONDS s from $PKG in $OUT (licence: $OUT/COPYRIGHT-$PKG.txt)"
