"""Real-time decoding: a trained checkpoint on a live LSL stream (``neurodecode stream``), through mne-lsl.

:class:`OnlineDecoder` reads the signal stream (``mne_lsl.stream.StreamLSL``) and a marker stream (strings, e.g. an
mne-lsl player's ``<name>-annotations``). For every marker whose description the checkpoint's data recipe labels, it
waits until the stream holds the epoch window plus ``pad`` seconds on each side, takes that stretch of signal, runs
the **same recipe** as offline on it — :func:`~neurodecode.loaders.meeg.load_epochs` with the recipe's
preprocessing steps (filters, referencing, resampling …) and window — checks the epoch against the checkpoint's
input contract and decodes it (latent → nearest stimulus of the checkpoint's gallery). Filtering a padded stretch
instead of the whole run gives the offline values exactly once ``pad`` covers half the filter's length (MNE's
FIR filters are finite), at the cost of ``pad`` seconds of latency; nothing is filtered across data that has not
arrived (no look-ahead beyond the pad).

Each prediction is a dict (``marker``, ``timestamp``, ``stimulus`` (top-1), ``top5``, ``latency_s`` — from the end
of the epoch's padded window being in the stream to the prediction) written as a JSON line and, optionally, pushed
to an LSL outlet of strings. Everything runs on the machine's LSL network scope; tests pin it to this host.

May import: every stage below (``neurodecode.core`` … ``neurodecode.evaluation``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.logs import logger
from neurodecode.core.validation import fail
from neurodecode.pipeline.checkpoint import DecodingPipeline, check_contract

__all__ = ["LOCAL_LSL_CONFIG", "OnlineDecoder", "epoch_recipe", "motor_imagery_checkpoint", "offline_predictions"]

#: keys of a ``data=meeg`` recipe that :func:`~neurodecode.loaders.meeg.load_epochs` takes for one stretch
_EPOCH_KEYS = ("tmin", "tmax", "labels", "stimulus", "baseline", "reject", "flat", "picks", "subject", "session",
               "regions")


def epoch_recipe(pipe: DecodingPipeline, checkpoint: str = "the checkpoint") -> dict[str, Any]:
    """The epoching recipe of a checkpoint trained on continuous recordings (``data=meeg``): preprocessing steps,
    window, labels and stimulus map — what a live stretch of signal goes through."""
    data = dict(pipe.config.get("data") or {})
    if not str(data.get("_target_", "")).endswith("load_recordings"):
        fail("data", "a checkpoint trained on continuous M/EEG recordings (data=meeg) to decode a live stream",
             data.get("_target_"), checkpoint)
    recipe = {k: data[k] for k in _EPOCH_KEYS if data.get(k) is not None}
    recipe["steps"] = list(data.get("steps") or [])
    if "labels" not in recipe and "stimulus" not in recipe:
        fail("data.labels", "the event descriptions the recipe epochs on (labels or stimulus)", "none", checkpoint)
    return recipe


class OnlineDecoder:
    """Decode a live LSL stream with a checkpoint, epoch by epoch, on its markers.

    Parameters
    ----------
    checkpoint : a ``neurodecode train`` checkpoint folder (trained with ``data=meeg``).
    stream : name of the LSL signal stream.
    markers : name of the LSL marker stream (strings); default ``<stream>-annotations`` (mne-lsl's player).
    pad : seconds of signal kept on each side of the epoch window for the filters (latency cost).
    bufsize : seconds of signal buffered.
    outlet : name of an LSL outlet of strings to push each prediction (JSON) to; None: none.
    potato : a z-score: reject epochs whose covariance a Riemannian potato (:class:`~neurodecode.encoders.OnlinePotato`,
        fitted on the first ``potato_warmup`` epochs, updated on the clean ones) finds farther; None: no rejection.
    marker_offset : seconds added to every marker timestamp: a source's known offset between its markers and its
        samples (mne-lsl's player stamps an annotation one sample before the sample it marks: ``1 / sfreq``).
    """

    def __init__(self, checkpoint: Any, stream: str, *, markers: str | None = None, pad: float = 2.0,
                 bufsize: float = 20.0, outlet: str | None = None, marker_offset: float = 0.0,
                 potato: float | None = None, potato_warmup: int = 10) -> None:
        from neurodecode.encoders.artifacts import OnlinePotato

        self.potato = None if potato is None else OnlinePotato(potato, potato_warmup)
        self.pipe = DecodingPipeline.load(checkpoint, heads=[])
        self.where = str(checkpoint)
        self.recipe = epoch_recipe(self.pipe, self.where)
        self.stream_name, self.marker_name = stream, markers or f"{stream}-annotations"
        self.pad, self.bufsize, self.outlet_name = float(pad), float(bufsize), outlet
        self.marker_offset = float(marker_offset)
        span = self.recipe["tmax"] - self.recipe["tmin"] + 2 * self.pad
        if span >= self.bufsize:
            fail("bufsize", f"more than the padded epoch window ({span:g} s)", self.bufsize)
        labels = self.recipe.get("labels", self.recipe.get("stimulus"))
        self.descriptions = {str(k) for k in (labels if not isinstance(labels, str) else [])}

    def _connect(self, timeout: float, markers: bool = True) -> None:
        from mne_lsl.lsl import StreamInlet, StreamInfo, StreamOutlet, resolve_streams
        from mne_lsl.stream import StreamLSL

        self.stream = StreamLSL(bufsize=self.bufsize, name=self.stream_name).connect(acquisition_delay=0.001,
                                                                                     timeout=timeout)
        self.inlet = None
        if markers:                               # sliding windows read no marker stream
            found = [s for s in resolve_streams(timeout=timeout, name=self.marker_name)]
            if not found:
                fail("markers", f"an LSL marker stream named {self.marker_name!r}", "none found", self.stream_name)
            self.inlet = StreamInlet(found[0])
            self.inlet.open_stream(timeout=timeout)
        self.outlet = None
        if self.outlet_name:
            info = StreamInfo(self.outlet_name, "Markers", 1, 0.0, "string", f"neurodecode-{self.outlet_name}")
            self.outlet = StreamOutlet(info)

    def _close(self) -> None:
        for name in ("inlet", "stream"):
            obj = getattr(self, name, None)
            if obj is not None:
                try:
                    obj.close_stream() if name == "inlet" else obj.disconnect()
                except Exception as err:  # closing a stream that its source already ended
                    logger.debug(f"{name}: {err}")

    def _stretch(self, onset: float) -> tuple[Any, float, float] | str | None:
        """The padded window around a marker as an ``mne.io.RawArray``, the newest stream time and the stretch's
        first sample time; None while the stream does not hold it yet; ``"missed"`` when its start is older than the
        buffer (the decoder connected after the window began, or ``bufsize`` is too small)."""
        import mne

        data, ts = self._buffered()
        self._seen = 0                                    # reading the buffer resets its count of new samples
        if ts.size == 0:
            return None
        # the marker itself must lie in the stretch (MNE epochs on an annotation), so a window that starts after
        # it (tmin > 0) still begins at the marker; half a sample of slack keeps rounding from dropping an edge
        start = min(onset, onset + self.recipe["tmin"]) - self.pad
        stop = onset + self.recipe["tmax"] + self.pad
        half = 0.5 / self.stream.info["sfreq"]
        if ts[-1] < stop:
            return None
        if ts[0] > start + half:  # the window began before the buffer holds data (connected late, or too small)
            return "missed"
        keep = (ts >= start - half) & (ts <= stop + half)
        info = self.stream.info.copy()
        raw = mne.io.RawArray(data[:, keep], info, verbose="error")
        t0 = ts[keep][0]
        return raw, float(ts[-1]), t0

    def _buffered(self) -> tuple[np.ndarray, np.ndarray]:
        """The buffered samples ``(n_channels, n)`` and their stream times, without the buffer's unfilled start
        (zeros stamped 0)."""
        data, ts = self.stream.get_data(winsize=self.bufsize)
        filled = ts > 0
        return data[:, filled], ts[filled]

    def _prediction(self, stamp: float, decoded: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A decoded epoch's dict (``timestamp``, ``extra``, the predictions, ``latency_s``), pushed to the outlet."""
        out = {"timestamp": stamp, **extra, **decoded}
        out["latency_s"] = round(float(self.stream_clock() - (stamp + self.recipe["tmax"] + self.pad)), 4)
        if self.outlet is not None:
            self.outlet.push_sample([json.dumps({k: v for k, v in out.items() if k != "latent"})])
        return out

    def _epoch(self, raw: Any, description: str, onset: float) -> Any:
        """The epoch of one marker, made by the checkpoint's recipe and checked against its contract."""
        import mne

        from neurodecode.loaders.meeg import load_epochs

        kw = {k: v for k, v in self.recipe.items() if k != "steps"}
        raw.set_annotations(mne.Annotations([onset], [0.0], [description]))
        ep = load_epochs(raw, return_report=False, steps=self.recipe["steps"], absent_labels="allow", **kw)
        return check_contract(self.pipe.contract, ep, f"{self.stream_name} at {onset:.3f} s", self.where)

    def _decode(self, raw: Any, description: str, onset: float) -> dict[str, Any]:
        ep = self._epoch(raw, description, onset)
        if self.potato is not None:
            clean, z = self.potato.check(ep.data[0])
            if not clean:
                return {"dropped": f"Riemannian potato: z = {z:.2f} > {self.potato.threshold:g} (an artefact)"}
        latents = self.pipe.latents(ep)
        top5 = self.pipe.target.retrieve(latents, 5)[0]         # retrieval: the target space's gallery
        return {"marker": description, "stimulus": top5[0], "top5": top5,
                "latent": latents[0].round(6).tolist()}

    def _drop(self, desc: str, stamp: float, reason: str) -> dict[str, Any]:
        """A labelled marker whose epoch cannot be decoded: logged, kept in :attr:`dropped`, and yielded."""
        logger.warning(f"{self.stream_name}: marker {desc!r} at {stamp:.3f} s dropped: {reason}")
        record = {"timestamp": stamp, "marker": desc, "dropped": reason}
        self.dropped.append(record)
        return record

    def _newest(self) -> float | None:
        """The stream time of the newest buffered sample (None when the buffer is empty)."""
        try:
            ts = self._buffered()[1]
        except Exception:                     # a source that already went away
            return None
        return float(ts[-1]) if ts.size else None

    def run(self, n_epochs: int | None = None, timeout: float = 30.0, idle: float = 5.0) -> Iterator[dict[str, Any]]:
        """Yield one dict per labelled marker, until ``n_epochs`` are decoded, or ``idle`` seconds pass with no new
        marker or sample after the last one (the stream ended), or ``timeout`` seconds without any.

        A decoded epoch's dict holds ``timestamp``, ``marker``, the predictions and ``latency_s``. An epoch that
        cannot be decoded is never silently lost: its dict holds ``timestamp``, ``marker`` and ``dropped`` (the
        reason — its window began before the oldest buffered sample, or the stream ended before the window was
        complete), and it is also kept in ``self.dropped``."""
        self._connect(timeout)
        self.dropped: list[dict[str, Any]] = []
        pending: list[tuple[str, float]] = []
        done, last, self._seen = 0, time.monotonic(), 0
        try:
            while n_epochs is None or done < n_epochs:
                values, stamps = self.inlet.pull_chunk(timeout=0.0)
                for value, stamp in zip(values, stamps):
                    desc = str(value[0] if isinstance(value, (list, tuple, np.ndarray)) else value)
                    if desc in self.descriptions:
                        pending.append((desc, float(stamp) + self.marker_offset))
                    last = time.monotonic()
                arrived = self.stream.n_new_samples           # since the last read of the buffer
                if arrived > self._seen:                       # the signal still flows
                    last = time.monotonic()
                self._seen = arrived
                ready = []
                for desc, stamp in pending:
                    got = self._stretch(stamp)
                    if got is None:
                        continue
                    if isinstance(got, str):
                        ready.append((desc, stamp))
                        yield self._drop(desc, stamp, "its window starts before the oldest buffered sample (the "
                                         "decoder connected late, or --bufsize is too small)")
                        continue
                    raw, newest, t0 = got
                    decoded = self._decode(raw, desc, stamp - t0)
                    ready.append((desc, stamp))
                    if "dropped" in decoded:          # rejected as an artefact: reported, not decoded
                        yield self._drop(desc, stamp, decoded["dropped"])
                        continue
                    done += 1
                    last = time.monotonic()
                    yield self._prediction(stamp, decoded)
                    if n_epochs is not None and done >= n_epochs:
                        break
                pending = [p for p in pending if p not in ready]
                if time.monotonic() - last > (idle if done or pending else timeout):
                    # the stream went quiet: the epochs still waiting for their window will never complete
                    newest = self._newest()
                    for desc, stamp in pending:
                        need = stamp + self.recipe["tmax"] + self.pad
                        held = "no sample" if newest is None else f"samples up to {newest:.3f} s"
                        yield self._drop(desc, stamp, f"the stream ended (or its source stopped) before the epoch's "
                                         f"padded window was complete: it needs samples up to {need:.3f} s, the "
                                         f"stream sent {held}")
                    break
                time.sleep(0.005)
        finally:
            self._close()

    def run_sliding(self, step: float, n_epochs: int | None = None, timeout: float = 30.0,
                    idle: float = 5.0) -> Iterator[dict[str, Any]]:
        """Decode the stream without markers (an asynchronous BCI): a window of the checkpoint's epoch length every
        ``step`` seconds, from the first buffered sample on, until ``n_epochs`` windows are decoded or ``idle``
        seconds pass without new samples (``timeout`` before the first).

        Each window goes through the same recipe as a marker-locked epoch (the checkpoint's preprocessing on a
        padded stretch, its window ``tmin``..``tmax`` after the window's time, its contract); the dict holds
        ``timestamp`` (the window's time 0 on the stream clock), ``window`` (its start and end), the predictions and
        ``latency_s``. ``--potato`` applies here too (a rejected window is a ``dropped`` dict).
        """
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            fail("step", "a sliding step > 0 in seconds", step)
        if not self.descriptions:
            fail("data.labels", "the checkpoint's labelled event descriptions (the recipe epochs on one)", "none",
                 self.where)
        desc = sorted(self.descriptions)[0]       # the recipe epochs on a labelled event; the label is not used
        self._connect(timeout, markers=False)
        self.dropped: list[dict[str, Any]] = []
        done, last, self._seen, onset = 0, time.monotonic(), 0, None
        lead = self.pad - min(0.0, self.recipe["tmin"])     # the first window starts on the first buffered sample
        try:
            while n_epochs is None or done < n_epochs:
                arrived = self.stream.n_new_samples
                if arrived > self._seen:
                    last = time.monotonic()
                self._seen = arrived
                if onset is None:
                    first = self._oldest()
                    if first is not None:
                        onset = first + lead
                while onset is not None and (n_epochs is None or done < n_epochs):
                    got = self._stretch(onset)
                    if got is None:
                        break
                    if isinstance(got, str):
                        yield self._drop(desc, onset, "the window starts before the oldest buffered sample (decoding "
                                         "fell behind the stream, or --bufsize is too small)")
                    else:
                        raw, newest, t0 = got
                        decoded = self._decode(raw, desc, onset - t0)
                        if "dropped" in decoded:
                            yield self._drop(desc, onset, decoded["dropped"])
                        else:
                            decoded.pop("marker", None)
                            done += 1
                            last = time.monotonic()
                            yield self._prediction(onset, decoded, window=[onset + self.recipe["tmin"],
                                                                           onset + self.recipe["tmax"]])
                    onset += float(step)
                if time.monotonic() - last > (idle if onset is not None else timeout):
                    break
                time.sleep(0.005)
        finally:
            self._close()

    def _oldest(self) -> float | None:
        """The stream time of the oldest buffered sample (None when the buffer is empty)."""
        ts = self._buffered()[1]
        return float(ts[0]) if ts.size else None

    @staticmethod
    def stream_clock() -> float:
        """LSL's clock (the timestamps' clock)."""
        from mne_lsl.lsl import local_clock

        return float(local_clock())


def predictions_table(predictions: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Predictions as a table (one row per epoch), with the latency's median and 95th percentile in ``attrs``."""
    table = pd.DataFrame([{k: v for k, v in p.items() if k != "latent"} for p in predictions])
    if len(table):
        table.attrs["latency_median_s"] = float(table["latency_s"].median())
        table.attrs["latency_p95_s"] = float(table["latency_s"].quantile(0.95))
    return table


#: a liblsl configuration that keeps streams on this machine (resolve scope "machine", IPv4 loopback only) — for
#: replaying recordings in tests and benchmarks without touching the network
LOCAL_LSL_CONFIG = "[multicast]\nResolveScope = machine\n[ports]\nIPv6 = disable\n[lab]\nKnownPeers = {127.0.0.1}\n"


def offline_predictions(checkpoint: Any, recording: Any) -> tuple[Any, np.ndarray, list[str]]:
    """What a checkpoint decodes from a whole recording offline (its own data recipe): the epochs, their latents
    (n_epochs, embed_dim) and each epoch's top-1 gallery stimulus — the reference an online run is compared with."""
    from neurodecode.pipeline.decoding import read_recordings

    pipe = DecodingPipeline.load(checkpoint, heads=[])
    epochs = read_recordings(pipe, [recording])
    latents = pipe.latents(epochs)
    return epochs, latents, [top[0] for top in pipe.target.retrieve(latents, 1)]


def motor_imagery_checkpoint(root: Any, data: Any, encoder: str = "tangent_space",
                             overrides: Sequence[str] = ()) -> Any:
    """A small checkpoint to try ``neurodecode stream`` with: EEGMMIDB subject 1's imagery runs 4 and 8 (the
    motor-imagery preprocessing, 1–2 s after the cue) → ``encoder`` (a ``conf/encoder`` name: tangent space, or
    e.g. ``eegnet``) → ridge onto the two classes (``experiment=classes``: the labels objective, no stimulus
    table). ``data`` is the folder of the shared recordings; ``overrides`` are more training-config overrides
    (``encoder.trainer.max_epochs=5``); returns the checkpoint (its predictions are the classes left / right)."""
    from pathlib import Path

    from neurodecode.core.configs import compose
    from neurodecode.pipeline.fitting import run

    root, data = Path(root), Path(data)
    runs = [str(data / "eegmmidb_S001" / f"S001R{r:02d}.edf") for r in (4, 8)]
    for r in runs:
        if not Path(r).is_file():
            raise FileNotFoundError(f"{r}: missing (the shared EEGMMIDB recordings)")
    cfg = compose(["experiment=classes", f"data.path=[{','.join(repr(r) for r in runs)}]", "data.tmin=1.0",
                   "data.tmax=2.0", "data.labels={T1:left,T2:right}", f"encoder={encoder}", "split.test=0.5",
                   *overrides])
    run(cfg, root / "run")
    return root / "run" / "checkpoint"
