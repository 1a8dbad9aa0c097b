"""Interactive annotation: the session engine (no web code) and its log."""

from samia.annotate.drafts import EDIT_KINDS, Draft, Edit, apply_edit, paint_stroke
from samia.annotate.log import append_event, read_log
from samia.annotate.session import AnnotationSession

__all__ = ["EDIT_KINDS", "AnnotationSession", "Draft", "Edit", "append_event", "apply_edit", "paint_stroke", "read_log"]
