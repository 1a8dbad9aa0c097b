"""``samia serve``: samia's models behind the protocols viewers already speak.

:mod:`~samia.serve.viewer` turns a viewer's 3D interactions into samia's volume engine and back;
:mod:`~samia.serve.sessions` holds the sessions (leases, memory); :mod:`~samia.serve.arrays`
reads and writes nnInteractive's array bodies; :mod:`~samia.serve.nninteractive` is that
protocol's endpoints and :mod:`~samia.serve.app` the guarded web app.
"""
