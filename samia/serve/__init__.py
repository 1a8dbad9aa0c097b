"""``samia serve``: samia's models behind the protocols viewers already speak.

:mod:`~samia.serve.viewer` turns a viewer's 3D interactions into samia's volume engine and back;
:mod:`~samia.serve.sessions` holds the sessions (leases, memory); :mod:`~samia.serve.arrays`
reads and writes nnInteractive's array bodies, :mod:`~samia.serve.npy` the older Slicer server's;
:mod:`~samia.serve.nninteractive`, :mod:`~samia.serve.slicer` and :mod:`~samia.serve.monailabel`
are the protocols' endpoints and :mod:`~samia.serve.app` the guarded web app.
"""

REPLY_SECONDS = 25.0
"""Seconds an interaction propagates before it answers what it has (viewers' clients give up
after 60 s; the reply must be sent well within 30)."""
