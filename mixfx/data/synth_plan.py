"""The song-level choices of one synthetic song: :class:`SongPlan` and :func:`plan_song`.

:func:`plan_song` draws tempo, key, mode, chord progression, beats per chord, swing, density,
section length, drum kit and groove, the bass patch and pattern, one or two ``other`` layers
(patch and pattern), the vocal patch and range, and the per-stem reverb sends from a numpy
generator, out of the General-MIDI vocabularies below. :mod:`mixfx.data.synth_midi` turns a plan
into MIDI files (the note-level choices).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pretty_midi

MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
MODE_WEIGHTS = {"major": 0.45, "minor": 0.35, "dorian": 0.1, "mixolydian": 0.1}
# Chord progressions as 0-based scale degrees of the mode.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 3), (0, 3, 0, 4), (1, 4, 0, 0), (0, 5, 1, 4),
              (3, 4, 0, 5), (0, 2, 3, 4), (0, 4, 3, 4), (5, 3, 0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2), (0, 2, 6, 5),
              (0, 3, 0, 4), (5, 6, 0, 0)),
    "dorian": ((0, 3, 0, 3), (0, 6, 3, 0), (0, 1, 0, 6), (0, 3, 6, 4)),
    "mixolydian": ((0, 6, 3, 0), (0, 3, 6, 3), (0, 6, 0, 3), (0, 4, 6, 3)),
}
DRUM_KITS = (0, 8, 16, 24, 25, 40)  # standard, room, power, electronic, TR-808, brush
GROOVES = ("rock", "four", "halftime", "hiphop", "shuffle", "sparse")
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39)
BASS_PATTERNS = ("whole", "quarters", "root_fifth", "eighths", "octaves", "syncopated", "walking")
SUSTAIN_PROGRAMS = (16, 19, 48, 49, 50, 88, 89, 90, 92, 94, 95)  # organs, strings, pads
KEYS_PROGRAMS = (0, 1, 2, 4, 5, 7, 11, 24, 25, 26, 27, 28, 29, 30, 46, 17, 18)
GUITAR_PROGRAMS = frozenset(range(24, 32))
OTHER_PATTERNS = ("stabs", "arpeggio", "broken")
VOCAL_PROGRAMS = (52, 53, 54, 85)  # choir aahs, voice oohs, synth voice, lead 6 (voice)


@dataclass(frozen=True)
class SongPlan:
    """Song-level choices of one synthetic song (all JSON-friendly)."""

    seconds: float
    tempo_bpm: float
    key: int  # tonic pitch class, 0 = C
    mode: str
    progression: tuple[int, ...]  # scale degrees, 0-based
    beats_per_chord: int
    sevenths: bool
    swing: float  # delay of off-beat eighths as a fraction of a beat (0 = straight)
    density: float  # 0..1, how busy every part is
    section_bars: int
    drum_kit: int
    groove: str
    bass_program: int
    bass_pattern: str
    other_programs: tuple[int, ...]
    other_patterns: tuple[str, ...]
    vocal_program: int
    vocal_center: int  # MIDI pitch at the middle of the melody's range
    reverb_sends: tuple[int, int, int, int]  # GM CC91 per stem (drums, bass, other, vocals)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["key_name"] = pretty_midi.note_number_to_name(self.key + 60)[:-1]
        return d


def plan_song(rng: np.random.Generator, seconds: float) -> SongPlan:
    """Draw the song-level choices of one song from ``rng``."""
    modes = list(MODE_WEIGHTS)
    mode = modes[rng.choice(len(modes), p=list(MODE_WEIGHTS.values()))]
    progs = PROGRESSIONS[mode]
    groove = GROOVES[rng.integers(len(GROOVES))]
    tempo = float(rng.integers(70, 161))
    swing = float(rng.uniform(0.1, 0.33)) if groove == "shuffle" or rng.random() < 0.15 else 0.0
    n_layers = 2 if rng.random() < 0.6 else 1
    other_programs, other_patterns = [], []
    if n_layers == 2 or rng.random() < 0.3:
        other_programs.append(int(rng.choice(SUSTAIN_PROGRAMS)))
        other_patterns.append("pad")
    while len(other_programs) < n_layers:
        other_programs.append(int(rng.choice(KEYS_PROGRAMS)))
        other_patterns.append(OTHER_PATTERNS[rng.integers(len(OTHER_PATTERNS))])
    return SongPlan(
        seconds=float(seconds),
        tempo_bpm=tempo,
        key=int(rng.integers(12)),
        mode=mode,
        progression=tuple(int(d) for d in progs[rng.integers(len(progs))]),
        beats_per_chord=int(rng.choice([2, 4, 4, 4, 8])),
        sevenths=bool(rng.random() < 0.35),
        swing=swing,
        density=float(rng.uniform(0.2, 1.0)),
        section_bars=int(rng.choice([4, 8])),
        drum_kit=int(rng.choice(DRUM_KITS)),
        groove=groove,
        bass_program=int(rng.choice(BASS_PROGRAMS)),
        bass_pattern=BASS_PATTERNS[rng.integers(len(BASS_PATTERNS))],
        other_programs=tuple(other_programs),
        other_patterns=tuple(other_patterns),
        vocal_program=int(rng.choice(VOCAL_PROGRAMS)),
        vocal_center=int(rng.integers(60, 72)),
        reverb_sends=tuple(int(v) for v in rng.integers([0, 0, 10, 20], [60, 30, 90, 100])),
    )
