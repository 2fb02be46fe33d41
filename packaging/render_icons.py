"""Render resources/icons/smmt-studio.svg to the hicolor PNG sizes (run after editing the SVG)."""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> None:
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (needed for painting)
    renderer = QSvgRenderer(str(ICONS / "smmt-studio.svg"))
    for size in SIZES:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = ICONS / "hicolor" / f"{size}x{size}" / "apps" / "smmt-studio.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(str(out))


if __name__ == "__main__":
    main()
