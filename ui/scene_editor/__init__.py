"""The Buyer's scene editor: forms generated from the scene spec, a live preview rendered
in a child process, a sample grid with boxes and masks. See ui.scene_editor.editor."""

from ui.scene_editor.editor import SceneEditor

__all__ = ["SceneEditor"]
