"""Real-time decoding: `neurodecode stream` on a recording replayed by mne-lsl's player over this host only gives
the offline predictions of the same checkpoint on the same epochs, with per-epoch latencies."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# liblsl confined to this machine: no multicast beyond the host, no IPv6, the only peer is localhost
from neurodecode.pipeline.streaming import LOCAL_LSL_CONFIG as LSL_CONFIG
from neurodecode.pipeline.streaming import motor_imagery_checkpoint as train_eeg_checkpoint
from neurodecode.pipeline.streaming import offline_predictions

pytestmark = pytest.mark.realdata


class FakeBuffer:
    """mne-lsl's ``StreamLSL`` as the decoder reads it: a buffer holding ``data`` (n_channels, n) stamped from
    ``t0`` at ``info["sfreq"]``, that receives nothing more (so the decoder's idle clock runs)."""

    n_new_samples = 0

    def __init__(self, data, info, t0=100.0):
        self.data, self.info, self.t0 = data, info, t0

    def get_data(self, winsize):
        return self.data, self.t0 + np.arange(self.data.shape[1]) / self.info["sfreq"]

    def disconnect(self):
        pass


class FakeMarkers:
    """An LSL marker inlet that sends ``labels`` at ``stamps`` once."""

    def __init__(self, labels, stamps):
        self.chunk, self.sent = ([[label] for label in labels], list(stamps)), False

    def pull_chunk(self, timeout):
        if self.sent:
            return [], []
        self.sent = True
        return self.chunk

    def close_stream(self):
        pass


def _silent_buffer(n_samples):
    """4 channels of zeros at 160 Hz from t = 100 s."""
    import mne

    return FakeBuffer(np.zeros((4, n_samples)), mne.create_info(4, 160.0, "eeg"))


def _connect_fakes(decoder, buffer, markers=None):
    """Replace the decoder's LSL connection (signal, markers, outlet) with the fakes."""
    def connect(timeout, **kwargs):          # run() asks for the marker stream, run_sliding() (markers=False) not
        decoder.stream, decoder.inlet, decoder.outlet = buffer, markers, None

    decoder._connect = connect


@pytest.fixture(scope="module")
def eeg_checkpoint(tmp_path_factory):
    from conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("stream")
    return train_eeg_checkpoint(root, SHARED_DATA), root


@pytest.mark.slow
def test_online_predictions_equal_the_offline_ones(eeg_checkpoint, shared_data, tmp_path):
    import mne

    checkpoint, _ = eeg_checkpoint
    raw = mne.io.read_raw_edf(shared_data / "eegmmidb_S001" / "S001R04.edf", preload=True, verbose="error")
    fif = tmp_path / "r04_raw.fif"
    raw.crop(0, 26).save(fif, verbose="error")        # labelled markers at 4.2 s (T2), 12.5 s (T1), 20.8 s (T1)
    (tmp_path / "lsl_api.cfg").write_text(LSL_CONFIG)
    env = {**os.environ, "LSLAPICFG": str(tmp_path / "lsl_api.cfg")}
    name = f"nd-test-{os.getpid()}"
    player = textwrap.dedent(f"""
        import json, time
        from mne_lsl.lsl import StreamInlet, resolve_streams
        from mne_lsl.player import PlayerLSL
        player = PlayerLSL({str(fif)!r}, chunk_size=16, name={name!r}, annotations=True,
                           annotations_encoding="string", n_repeat=1)
        player.start()
        found, t0, got = [], time.monotonic(), []
        while not found and time.monotonic() - t0 < 15:
            found = resolve_streams(timeout=0.5, name={name + "-pred"!r})
        if found:
            inlet = StreamInlet(found[0]); inlet.open_stream(timeout=5)
            ended = None                 # the recording played out: 2 s more for the last prediction
            while time.monotonic() - t0 < 34 and (ended is None or time.monotonic() - ended < 2):
                values, _ = inlet.pull_chunk(timeout=0.2)
                got += [v[0] for v in values]
                if ended is None and not player.running:
                    ended = time.monotonic()
        try:
            player.stop()
        except RuntimeError:
            pass
        print(json.dumps(got))
    """)
    proc = subprocess.Popen([sys.executable, "-c", player], env=env, stdout=subprocess.PIPE, text=True)
    try:
        out = subprocess.run([sys.executable, "-m", "neurodecode", "stream", str(checkpoint), "--lsl-stream", name,
                              "--pad", "1.0", "--marker-offset", str(1 / 160), "--outlet", f"{name}-pred",
                              "--latents", "--idle", "3", "--timeout", "20"],
                             env=env, capture_output=True, text=True, timeout=120)
        pushed = json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1])
    finally:
        proc.kill()
    assert out.returncode == 0, out.stderr
    online = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    offline, latents, top = offline_predictions(checkpoint, fif)
    print(f"\n{out.stderr.strip().splitlines()[-1]}")
    # a slow start may miss the first marker (the stream began before the decoder connected): the online epochs are
    # then the last offline ones
    k = len(online)
    assert offline.table["event_description"].tolist() == ["T2", "T1", "T1"] and k >= 2
    assert [p["marker"] for p in online] == offline.table["event_description"].tolist()[-k:]
    np.testing.assert_allclose(np.array([p["latent"] for p in online]), latents[-k:], atol=1e-4)
    top = top[-k:]
    assert [p["stimulus"] for p in online] == top
    assert all(0 <= p["latency_s"] < 10.0 for p in online)
    # the LSL outlet carried them too (a consumer sees what is pushed after it connects)
    assert pushed and [json.loads(p)["stimulus"] for p in pushed] == top[len(top) - len(pushed):]


def test_a_checkpoint_without_a_continuous_recipe_is_refused(eeg_checkpoint):
    from neurodecode.pipeline import DecodingPipeline
    from neurodecode.pipeline.streaming import epoch_recipe

    pipe = DecodingPipeline.load(eeg_checkpoint[0], heads=[])
    recipe = epoch_recipe(pipe)
    assert recipe["tmin"] == 1.0 and [s["step"] for s in recipe["steps"]] == ["rename", "montage", "filter"]
    pipe.config["data"]["_target_"] = "neurodecode.loaders.simulate.simulated_subject"
    with pytest.raises(ValueError, match=r"field 'data': expected a checkpoint trained on continuous M/EEG"):
        epoch_recipe(pipe, "ckpt")


def test_a_marker_older_than_the_buffer_is_skipped_and_windows_keep_their_marker(eeg_checkpoint):
    from neurodecode.pipeline.streaming import OnlineDecoder

    decoder = OnlineDecoder(eeg_checkpoint[0], "no-such-stream", pad=1.0)
    decoder.stream = _silent_buffer(800)                # 5 s of a stream whose first sample is at t = 100 s
    assert decoder._stretch(99.5) == "missed"          # its padded window starts before the oldest sample
    assert decoder._stretch(102.5) is None              # needs the stream up to 105.5 s
    raw, newest, t0 = decoder._stretch(101.0)          # tmin 1 s > 0: the stretch still starts at the marker − pad
    assert t0 == pytest.approx(100.0) and raw.times[-1] == pytest.approx(4.0, abs=1 / 160)


def test_an_epoch_cut_by_the_end_of_the_stream_is_reported_dropped_not_lost(eeg_checkpoint):
    """The source stops 1 s into an epoch's window: the run yields (and keeps) a dropped record with the reason,
    instead of ending as if every labelled epoch had been decoded."""
    from neurodecode.pipeline.streaming import OnlineDecoder

    decoder = OnlineDecoder(eeg_checkpoint[0], "no-such-stream", pad=1.0)
    label = sorted(decoder.descriptions)[0]
    # 5 s of signal from t = 100 s, then nothing more; one labelled marker at 103 s, its window ends at 103 + 2 + 1 s
    _connect_fakes(decoder, _silent_buffer(800), FakeMarkers([label], [103.0]))
    out = list(decoder.run(idle=0.2, timeout=1.0))
    assert len(out) == 1 and out[0]["marker"] == label and out[0]["timestamp"] == 103.0
    assert "the stream ended" in out[0]["dropped"] and "up to 106.000 s" in out[0]["dropped"]
    assert "up to 104.994 s" in out[0]["dropped"] and decoder.dropped == out


def test_the_online_potato_rejects_an_artefact_epoch_and_the_run_reports_it_dropped(eeg_checkpoint, shared_data):
    """`--potato Z`: the first epochs fit a Riemannian potato; an epoch with a burst on two channels is reported as
    dropped (not decoded); the clean ones are decoded as without it."""
    import mne

    from neurodecode.pipeline.streaming import OnlineDecoder

    raw = mne.io.read_raw_edf(shared_data / "eegmmidb_S001" / "S001R04.edf", preload=True, verbose="error")
    cues = [(float(t), d) for t, d in zip(raw.annotations.onset, raw.annotations.description) if d in ("T1", "T2")]
    decoder = OnlineDecoder(eeg_checkpoint[0], "no-such-stream", pad=1.0, potato=3.0, potato_warmup=8)
    plain = OnlineDecoder(eeg_checkpoint[0], "no-such-stream", pad=1.0)
    out = []
    for k, (onset, desc) in enumerate(cues[:14]):
        stretch = raw.copy().crop(onset - 1.0, onset + 3.5)
        if k == 12:                                   # a 200 µV burst on two channels during the epoch window
            data = stretch.get_data()
            data[:2, 300:500] += 200e-6 * np.sin(np.arange(200) / 3.0)
            stretch = mne.io.RawArray(data, stretch.info, verbose="error")
        got = decoder._decode(stretch, desc, 1.0)
        out.append(got)
        if "dropped" not in got:
            np.testing.assert_allclose(got["latent"], plain._decode(stretch, desc, 1.0)["latent"], atol=1e-6)
    assert [("dropped" in o) for o in out] == [False] * 12 + [True, False]
    assert out[12]["dropped"].startswith("Riemannian potato: z = ") and decoder.potato.ready

    # the run loop reports it as a dropped line, in order, and keeps it
    label = sorted(decoder.descriptions)[0]
    _connect_fakes(decoder, _silent_buffer(1600), FakeMarkers([label, label], [102.0, 104.0]))
    calls = []

    def judged(raw, desc, onset):                  # the second epoch is an artefact
        calls.append(onset)
        if len(calls) == 2:
            return {"dropped": "Riemannian potato: z = 9.00 > 3 (an artefact)"}
        return {"marker": desc, "stimulus": "x", "top5": []}

    decoder._decode = judged
    lines = list(decoder.run(idle=0.2, timeout=1.0))
    assert [("dropped" in line) for line in lines] == [False, True] and decoder.dropped == [lines[1]]


def test_sliding_windows_without_markers_decode_what_epochs_of_the_whole_recording_give(eeg_checkpoint, shared_data):
    """An asynchronous BCI: windows every 2 s from the first buffered sample, no marker stream; each window's latent
    equals the latent of the same window epoched from the whole recording."""
    import mne

    from neurodecode.pipeline.streaming import OnlineDecoder

    raw = mne.io.read_raw_edf(shared_data / "eegmmidb_S001" / "S001R04.edf", preload=True, verbose="error")
    raw.crop(0, 20.0)
    decoder = OnlineDecoder(eeg_checkpoint[0], "no-such-stream", pad=1.0)
    _connect_fakes(decoder, FakeBuffer(raw.get_data(), raw.info))      # the first 20 s of the run, from t = 100 s
    out = list(decoder.run_sliding(2.0, n_epochs=4, idle=0.2))
    assert [o["timestamp"] for o in out] == [101.0, 103.0, 105.0, 107.0]
    assert out[0]["window"] == [102.0, 103.0] and "marker" not in out[0] and "stimulus" in out[0]
    desc = sorted(decoder.descriptions)[0]
    for o in out:
        ep = decoder._epoch(raw.copy(), desc, o["timestamp"] - 100.0)          # the whole 20 s, one annotation
        np.testing.assert_allclose(o["latent"], decoder.pipe.latents(ep)[0], atol=1e-4)
    with pytest.raises(ValueError, match="field 'step'"):
        next(decoder.run_sliding(0.0))
