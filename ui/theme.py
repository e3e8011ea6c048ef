"""Light and dark themes on Qt's Fusion style. "system" follows the desktop's colour scheme
where Qt can read it (and changes with it), else light."""

from __future__ import annotations

from ui.qt import QApplication, QColor, QPalette, Qt


def _dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor("#2b2d30"), QColor("#1e1f22"), QColor("#dfe1e5")
    mid, disabled = QColor("#4e5157"), QColor("#7a7e85")
    roles = {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.ToolTipBase: base, QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: QColor("#393b40"),
        QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor("#ff6b6b"),
        QPalette.ColorRole.Highlight: QColor("#2f80ed"), QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#6ea8fe"), QPalette.ColorRole.Mid: mid,
        QPalette.ColorRole.Midlight: QColor("#43454a"), QPalette.ColorRole.Dark: QColor("#1a1b1e"),
        QPalette.ColorRole.PlaceholderText: QColor("#9a9ea5"),  # secondary text: 6:1 on the window colour
    }
    for role, color in roles.items():
        p.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def effective_scheme(choice: str, app: QApplication) -> str:
    if choice in ("light", "dark"):
        return choice
    return "dark" if app.styleHints().colorScheme() == Qt.ColorScheme.Dark else "light"


def apply_theme(app: QApplication, choice: str) -> str:
    """Apply "system" | "light" | "dark"; returns the scheme in effect."""
    app.setStyle("Fusion")
    scheme = effective_scheme(choice, app)
    app.setPalette(_dark_palette() if scheme == "dark" else app.style().standardPalette())
    _repolish(app)
    return scheme


def _repolish(app: QApplication) -> None:
    """A widget with a style sheet keeps the palette (and the palette(...) colours) it was
    polished with: set every sheet again so widgets built before a theme switch (device cards,
    banners, subtitles, toggle buttons) take the new colours."""
    for w in app.allWidgets():
        hook = getattr(w, "theme_changed", None)
        if callable(hook):
            hook()
            continue
        sheet = w.styleSheet()
        if sheet:
            w.setStyleSheet("")
            w.setStyleSheet(sheet)


def follow_system(app: QApplication, get_choice) -> None:
    """Re-apply the theme when the desktop switches light/dark while `get_choice()` is "system"."""
    def changed(_scheme) -> None:
        if get_choice() == "system":
            apply_theme(app, "system")

    app.styleHints().colorSchemeChanged.connect(changed)
