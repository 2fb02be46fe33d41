#!/usr/bin/env bash
# Build the one-folder desktop bundle: dist/smmt-studio/smmt-gui (not part of CI; takes minutes).
# Then optionally install the desktop entry, AppStream metainfo and icons for the current user.
#   packaging/build.sh              build the bundle
#   packaging/build.sh --install    also install .desktop, metainfo and icons under ~/.local/share
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet "pyinstaller>=6.0"
python -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/smmt-gui.spec
echo "bundle: dist/smmt-studio ($(du -sh dist/smmt-studio | cut -f1))"
if [[ "${1:-}" == "--install" ]]; then
    share="${XDG_DATA_HOME:-$HOME/.local/share}"
    install -Dm644 packaging/smmt-studio.desktop "$share/applications/smmt-studio.desktop"
    install -Dm644 packaging/io.github.smmt_studio.SMMTStudio.metainfo.xml "$share/metainfo/io.github.smmt_studio.SMMTStudio.metainfo.xml"
    for png in resources/icons/hicolor/*/apps/smmt-studio.png; do
        size=$(basename "$(dirname "$(dirname "$png")")")
        install -Dm644 "$png" "$share/icons/hicolor/$size/apps/smmt-studio.png"
    done
    install -Dm644 resources/icons/smmt-studio.svg "$share/icons/hicolor/scalable/apps/smmt-studio.svg"
    echo "installed the desktop entry under $share"
fi
