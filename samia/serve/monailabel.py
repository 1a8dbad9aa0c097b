"""MONAI Label's REST API, as its client (``monailabel.client.MONAILabelClient``) and 3D Slicer's
MONAILabel module call it.

samia appears as a MONAI Label app with one *deepgrow* model (so Slicer shows its click tools and
its ROI box tool), 3D, named after the samia model it runs. It keeps no datastore: the Slicer module
uploads the volume it shows as a *session* (``PUT /session/``, the volume as a file), and every
``POST /infer/{model}?image=…&session_id=…`` carries the prompts in its ``params`` form field:

- ``foreground`` / ``background``: every click so far, ``[i, j, k]`` voxel indices of the uploaded
  file (ITK's order: samia's ``(z, y, x)`` voxel is ``(k, j, i)``);
- ``roi``: Slicer's ROI box ``[i0, i1, j0, j1, k0, k1]`` (inclusive voxel corners);
- ``label`` (the segment's name), ``reset_state``, ``result_extension`` (``.nrrd``, ``.nii.gz``,
  ``.nii``) and ``result_dtype``.

The client sends *all* prompts each time; samia's session is incremental (:mod:`samia.serve.viewer`).
When a request repeats the previous one's prompts and adds clicks, the new clicks are one
interaction (a correction of the object); otherwise (another label, a moved or deleted click,
another ROI, ``reset_state``) the object starts over from all of them as one interaction: the ROI's
middle-slice box, then every click. A request that adds nothing finishes a propagation the reply
deadline ended, if any. The reply is MONAI Label's multipart form: the label volume (0/1, the
uploaded file's geometry) as a file and a JSON ``params`` part (``label_names``; ``finished``
False when the reply deadline ended the propagation: send again to go on).

Auth: ``GET /auth/`` says whether the server has a key; ``POST /auth/token`` takes it as the
password (any user name) and answers it as a Bearer token, which the client then sends.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from urllib3 import encode_multipart_formdata
from urllib3.fields import RequestField

from samia.errors import InputError, SamiaError
from samia.io.formats import file_suffix
from samia.io.readers import read_image
from samia.io.writers import write_mask
from samia.serve.sessions import SessionEntry, SessionGoneError, ViewerSessions
from samia.serve.viewer import Change, ViewerSession
from samia.types import Image2D, Volume
from samia.version import __version__

_log = logging.getLogger("samia.serve")

UPLOAD_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".dcm")
"""Files a session may be made of: one volume file, or the ``.dcm`` files of one DICOM series."""
RESULT_SUFFIXES = (".nrrd", ".nii.gz", ".nii")
EMPTY_DATASTORE = {"total": 0, "completed": 0, "label_tags": {}}
"""What ``/datastore/`` and ``/info/`` say of samia's (absent) datastore."""


@dataclass(frozen=True)
class Prompts:
    """What one infer request carries, in samia's ``(z, y, x)`` voxel order.

    Attributes:
        label: the segment's name.
        foreground, background: every click so far.
        region: the ROI as ``[[low, high), ...]`` per image axis, or None.
        reset: the client asks to start the object over (``reset_state``).
    """

    label: str
    foreground: tuple[tuple[int, int, int], ...]
    background: tuple[tuple[int, int, int], ...]
    region: tuple[tuple[int, int], ...] | None
    reset: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Prompts:
        """Read MONAI Label's ``params`` (``[i, j, k]`` clicks, Slicer's ROI).

        Raises:
            SamiaError: a click or ROI that is not integers in the expected layout.
        """
        roi = params.get("roi") or None
        if roi is not None:
            if not isinstance(roi, list) or len(roi) != 6 or not all(_is_int(v) for v in roi):
                raise SamiaError(f"roi is [i0, i1, j0, j1, k0, k1] (voxel indices), got {roi!r}")
            pairs = [sorted((int(roi[2 * a]), int(roi[2 * a + 1]))) for a in (2, 1, 0)]
            region = tuple((low, high + 1) for low, high in pairs)
        return cls(
            label=str(params.get("label", "")),
            foreground=_clicks(params.get("foreground"), "foreground"),
            background=_clicks(params.get("background"), "background"),
            region=region if roi is not None else None,
            reset=str(params.get("reset_state", False)).strip().lower() in ("true", "1", "yes"),
        )

    def added_to(self, previous: Prompts | None) -> Prompts | None:
        """The clicks this request adds to ``previous`` (same label and ROI, its clicks first);
        None when it does not continue it."""
        if self.reset or previous is None or (previous.label, previous.region) != (self.label, self.region):
            return None
        earlier_fg, earlier_bg = len(previous.foreground), len(previous.background)
        if self.foreground[:earlier_fg] != previous.foreground or self.background[:earlier_bg] != previous.background:
            return None
        return Prompts(self.label, self.foreground[earlier_fg:], self.background[earlier_bg:], None)

    def apply(self, viewer: ViewerSession) -> Change | None:
        """The ROI and clicks as one interaction on ``viewer``; None when there are none."""
        points = [(p, True) for p in self.foreground] + [(p, False) for p in self.background]
        if not points and self.region is None:
            return None
        region = None if self.region is None else [list(pair) for pair in self.region]
        return viewer.add_prompts(points=points, region=region)


def info(model_name: str) -> dict[str, Any]:
    """``GET /info/``: one deepgrow model, 3D, no trainers, strategies or datastore."""
    description = f"samia {model_name}: clicks and an ROI box on a slice, propagated through the volume"
    return {
        "name": "samia",
        "description": f"samia serve {__version__}: no datastore (the viewer uploads its volume as a session)",
        "version": __version__,
        "labels": [],
        "models": {
            model_name: {"type": "deepgrow", "labels": [], "dimension": 3, "description": description, "config": {}}
        },
        "trainers": {},
        "strategies": {},
        "scoring": {},
        "train_stats": {},
        "datastore": dict(EMPTY_DATASTORE),
    }


def add_routes(app: FastAPI, sessions: ViewerSessions, key: str | None) -> None:
    """Mount MONAI Label's paths on ``app`` (``/auth/`` and ``/auth/token`` answer without the key;
    the app's guard checks it on every other path)."""
    router = APIRouter()

    @router.get("/info/")
    def get_info() -> dict[str, Any]:
        return info(sessions.model.name)

    _add_auth_routes(router, key)
    _add_session_routes(router, sessions)
    _add_infer_route(router, sessions)
    app.include_router(router)


def _add_auth_routes(router: APIRouter, key: str | None) -> None:
    @router.get("/auth/")
    def auth_enabled() -> dict[str, Any]:
        return {"enabled": key is not None, "client_id": "samia", "realm": ""}

    @router.post("/auth/token")
    def auth_token(username: str = Form(""), password: str = Form("")) -> dict[str, Any]:
        if key is None:
            return {"access_token": None, "token_type": None}
        if not secrets.compare_digest(password.encode(), key.encode()):
            raise HTTPException(401, "wrong password: give the key samia serve printed (any user name)")
        return {"access_token": key, "token_type": "Bearer"}

    @router.get("/auth/token/valid")
    def auth_token_valid() -> dict[str, Any]:
        return {"username": "samia", "roles": ["user"]}  # the guard let the token through


def _add_session_routes(router: APIRouter, sessions: ViewerSessions) -> None:
    @router.get("/datastore/")
    def datastore(output: str = "stats") -> dict[str, Any]:
        if output == "all":
            return {"name": "samia", "description": "no datastore", "images_dir": "", "labels_dir": "", "objects": {}}
        return dict(EMPTY_DATASTORE)

    @router.put("/datastore/")
    @router.put("/datastore/label")
    def datastore_upload() -> JSONResponse:
        return JSONResponse(
            {
                "detail": "samia serve keeps no datastore: open the image in the viewer and segment (it uploads a session)"
            },
            status_code=501,
        )

    @router.put("/session/")
    async def create_session(files: list[UploadFile] = File(...), expiry: int = 0) -> dict[str, Any]:  # noqa: B008
        bodies = [((upload.filename or "").strip(), await upload.read()) for upload in files]

        def work() -> dict[str, Any]:
            volume = _read_upload(bodies)
            entry = sessions.claim(heartbeat=False)
            try:
                with entry.lock:
                    sessions.set_image(entry, volume.array, volume.spacing, geometry=volume)
            except BaseException:
                sessions.release(entry.token)
                raise
            _log.info("session session=%s shape=%s spacing=%s", entry.name, list(volume.shape), volume.spacing)
            return {"session_id": entry.token, "session_info": _session_info(sessions, entry)}

        return await run_in_threadpool(work)

    @router.get("/session/{session_id}")
    def get_session(session_id: str) -> dict[str, Any]:
        return _session_info(sessions, _known(sessions, session_id))

    @router.delete("/session/{session_id}")
    def remove_session(session_id: str) -> dict[str, Any]:
        described = _session_info(sessions, _known(sessions, session_id))
        sessions.release(session_id)
        return described


def _add_infer_route(router: APIRouter, sessions: ViewerSessions) -> None:
    model_name = sessions.model.name

    @router.post("/infer/{model}", response_model=None)
    async def infer(
        model: str, image: str = "", session_id: str = "", output: str = "", params: str = Form("{}")
    ) -> Response | dict[str, Any]:
        if model != model_name:
            raise HTTPException(404, f"no model {model!r}: this server runs {model_name!r}")
        if not session_id:
            raise HTTPException(
                404, f"image {image!r} is not here: samia serve keeps no datastore; upload it as a session first"
            )
        entry = _known(sessions, session_id, active=True)
        requested = _params(params)
        prompts = Prompts.from_params(requested)
        suffix = str(requested.get("result_extension") or ".nii.gz")
        if suffix not in RESULT_SUFFIXES:
            raise SamiaError(f"result_extension {suffix!r}: one of {', '.join(RESULT_SUFFIXES)}")

        def work() -> tuple[bytes, dict[str, Any]]:
            with entry.lock:
                change = sessions.interact(entry, "infer", lambda viewer: _infer(entry, viewer, prompts))
                viewer = entry.require_viewer()
                with tempfile.TemporaryDirectory(prefix="samia-serve-") as folder:
                    path = write_mask(Path(folder) / f"label{suffix}", viewer.mask, viewer.volume)
                    label = path.read_bytes()
            result = {
                "label_names": {prompts.label or "object": 1},
                "finished": viewer.finished,
                "slices_changed": [] if change is None else change.slices,
            }
            return label, result

        label, result = await run_in_threadpool(work)
        if output == "json":
            return result
        name = f"samia_{entry.name}_{time.time_ns()}{suffix}"  # the client saves it under this name
        if output == "image":
            return Response(label, media_type="application/octet-stream", headers=_attachment(name))
        return _multipart(result, name, label)


def _infer(entry: SessionEntry, viewer: ViewerSession, prompts: Prompts) -> Change | None:
    """The request's prompts on the session's object (module docstring), remembered for the next."""
    added = prompts.added_to(entry.sent)
    if added is None:
        viewer.reset()
    entry.sent = None  # a request that fails leaves no record: the next one starts over from all it sends
    change = (added or prompts).apply(viewer)
    entry.sent = prompts
    return viewer.finish() if change is None else change


def _read_upload(bodies: list[tuple[str, bytes]]) -> Volume:
    """The session's volume from its uploaded files, written under names samia chooses.

    Raises:
        SamiaError: no file, an unknown ending, several files that are not one DICOM series, or a
            file samia cannot read (its reader names the problem).
    """
    if not bodies:
        raise SamiaError("no file uploaded: send the volume as 'files'")
    suffixes = [file_suffix(name) for name, _ in bodies]
    for (name, _), suffix in zip(bodies, suffixes):
        if suffix not in UPLOAD_SUFFIXES:
            raise SamiaError(f"uploaded file {name!r}: samia reads {', '.join(UPLOAD_SUFFIXES)} here")
    if len(bodies) > 1 and set(suffixes) != {".dcm"}:
        raise SamiaError("several files are one DICOM series (.dcm files) or one volume file")
    named = bodies[0][0] if len(bodies) == 1 else f"{len(bodies)} DICOM files"
    with tempfile.TemporaryDirectory(prefix="samia-serve-") as folder:
        for number, ((_, body), suffix) in enumerate(zip(bodies, suffixes)):
            (Path(folder) / f"upload{number:05d}{suffix}").write_bytes(body)
        source = Path(folder) / f"upload00000{suffixes[0]}" if len(bodies) == 1 else Path(folder)
        try:
            image = read_image(source)
        except InputError as error:  # named as the client named it: the server's folders are not told
            problem = error.problem.replace(str(source), repr(named)).replace(folder, "<upload>")
            raise SamiaError(f"uploaded {named!r}: {problem}") from None
    return _as_volume(image)


def _as_volume(image: Image2D | Volume) -> Volume:
    """A one-slice volume of a 2D image (where a slice of a 3D file lies, it stays)."""
    if isinstance(image, Volume):
        return image
    if image.array.ndim != 2:
        raise SamiaError(f"{image.path}: a color image; the viewer sends gray volumes")
    placement = image.placement
    if placement is None:
        return Volume(image.array[None], spacing=(1.0, *image.spacing), path=image.path)
    return Volume(
        image.array[None],
        spacing=(placement.thickness, *image.spacing),
        origin=placement.origin,
        direction=placement.direction,
        path=image.path,
    )


def _known(sessions: ViewerSessions, session_id: str, active: bool = False) -> SessionEntry:
    try:
        return sessions.get(session_id, active=active)
    except SessionGoneError:
        raise HTTPException(404, f"session {session_id[:8]!r} not found (ended or never made)") from None


def _session_info(sessions: ViewerSessions, entry: SessionEntry) -> dict[str, Any]:
    """MONAI Label's ``SessionInfo`` fields (no paths: nothing of the server's disk is told)."""
    viewer = entry.viewer
    meta = {} if viewer is None else {"shape": list(viewer.shape), "spacing": list(viewer.volume.spacing)}
    now = int(time.time())
    return {
        "name": entry.name,
        "path": "",
        "image": "",
        "meta": meta,
        "create_ts": now,
        "last_access_ts": now,
        "expiry": int(sessions.remaining_seconds(entry)),
    }


def _params(text: str) -> dict[str, Any]:
    try:
        params = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise SamiaError(f"params is not JSON ({error.msg})") from None
    if not isinstance(params, dict):
        raise SamiaError("params is a JSON object")
    return params


def _clicks(value: Any, name: str) -> tuple[tuple[int, int, int], ...]:
    """``[[i, j, k], ...]`` as ``(z, y, x)`` voxels."""
    if value in (None, ""):
        return ()
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 3 and all(_is_int(v) for v in p) for p in value
    ):
        raise SamiaError(f"{name} is a list of [i, j, k] voxel indices, got {value!r}")
    return tuple((int(k), int(j), int(i)) for i, j, k in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()


def _multipart(result: dict[str, Any], name: str, label: bytes) -> Response:
    """MONAI Label's reply: a ``params`` JSON part and the label volume as a file part."""
    params = RequestField("params", json.dumps(result))
    params.make_multipart(content_type="application/json")
    image = RequestField("image", label, filename=name)
    image.make_multipart(content_type="application/octet-stream")
    body, content_type = encode_multipart_formdata([params, image])
    return Response(body, media_type=content_type)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}
