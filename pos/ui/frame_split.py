"""Bounded frame memory on a software GL (Mesa's llvmpipe: under Xvfb, and on machines with no GPU).

llvmpipe keeps, for the frame being drawn, a copy of its fragment state for every draw that
follows a vertex buffer upload, and Kivy uploads a widget's vertices at its first draw: a freshly
built screen holds markedly more memory at its first frame than at the next (bench_ui; the memory
is back once the frame is rasterized). A glFinish every few widgets lets llvmpipe rasterize and
reuse that memory mid-frame. It costs llvmpipe's pipelining, so a full redraw is slower; frames are
drawn only when something changes, so that is paid per change, not per frame. (Splitting only in
the few frames after widgets were made was tried: start-up draws many frames (layout, status,
reader start-up), and the peak came back.) docs/memory.md has the measurements.
A GPU driver (the Pi's v3d) keeps no such copies and would pay for every mid-frame flush (it renders
in tiles), so the split is made on software GL only.
"""

from __future__ import annotations

from kivy.graphics import Callback
from kivy.graphics import opengl as gl

SOFTWARE_RENDERERS = (b"llvmpipe", b"softpipe", b"swrast")


class FrameSplit:
    """Puts the split points in widgets' canvases; decided once per process, from the GL renderer."""

    enabled: bool | None = None  # decided at the first widget, once the window's GL context exists
    every = 8  # widgets drawn between two flushes
    passed = 0  # split points drawn so far

    @staticmethod
    def software(renderer: bytes) -> bool:
        """Whether a GL renderer string names a software
        rasterizer, the only kind where splitting frames pays."""
        return any(name in renderer.lower() for name in SOFTWARE_RENDERERS)

    @classmethod
    def add_to(cls, canvas) -> None:
        """Give a widget a split point at the end of its drawing (pass its `canvas.after`)."""
        if cls.enabled is None:
            cls.enabled = cls.software(gl.glGetString(gl.GL_RENDERER) or b"")
        if cls.enabled:
            canvas.add(Callback(cls._drawn, reset_context=False))

    @classmethod
    def _drawn(cls, _instruction) -> None:
        cls.passed += 1
        if cls.passed % cls.every == 0:
            gl.glFinish()
