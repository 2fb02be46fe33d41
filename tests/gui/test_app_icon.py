"""The window icon ships with the source tree (resources/icons) and the app uses it."""

from smmt_gui.widgets import window_icon


def test_window_icon_is_found_at_several_sizes(qapp):
    icon = window_icon()
    assert icon is not None
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert {(16, 16), (48, 48), (256, 256)} <= sizes
