"""General-MIDI arrangements for the built-in synthetic multitrack set.

:func:`arrange` turns a song plan (:func:`mixfx.data.synth_plan.plan_song`: tempo, key, mode, chord
progression, grooves, instruments, density) into one :class:`pretty_midi.PrettyMIDI` per stem (``drums``, ``bass``, ``other``, ``vocals``):

- drums: GM percussion (channel 10) grooves with kick/snare/hats or ride, ghost notes, tom fills
  at phrase ends and crashes at section starts;
- bass: a bass patch playing root/fifth/octave/walking lines that follow the chords;
- other: one or two layers of keys/guitars/strings/pads playing held chords, stabs or arpeggios;
- vocals: a voice-like patch singing phrases built on the chords, with rests, scoops and vibrato
  (pitch bends).

Everything is in 4/4; times are computed in beats and converted to seconds with the tempo.
"""

from __future__ import annotations

import math

import numpy as np
import pretty_midi

from mixfx.data.synth_plan import GUITAR_PROGRAMS, MODES, SongPlan

KICK, SNARE, RIM, CLAP, HAT, PEDAL_HAT, OPEN_HAT, RIDE, CRASH, SHAKER = 36, 38, 37, 39, 42, 44, 46, 51, 49, 70
TOMS = (50, 48, 47, 45, 43, 41)
TAIL_CONTROLLER = 110  # an undefined GM controller: a harmless event that marks the render end


def arrange(plan: SongPlan, rng: np.random.Generator, *, tail_seconds: float = 0.25) -> dict[str, pretty_midi.PrettyMIDI]:
    """Write the four stems of ``plan`` as General-MIDI files.

    Args:
        plan: the song-level choices (:func:`mixfx.data.synth_plan.plan_song`).
        rng: draws the note-level choices (patterns, pitches, velocities, timing).
        tail_seconds: every file gets a no-op controller event at ``plan.seconds + tail_seconds``
            so a renderer that stops at the last event renders at least that long.

    Returns:
        ``{"drums": ..., "bass": ..., "other": ..., "vocals": ...}``, one PrettyMIDI per stem.
    """
    return _Arranger(plan, rng, tail_seconds).run()


class _Arranger:
    def __init__(self, plan: SongPlan, rng: np.random.Generator, tail_seconds: float):
        self.p, self.rng = plan, rng
        self.beat_s = 60.0 / plan.tempo_bpm
        self.end_s = plan.seconds
        self.tail_s = plan.seconds + tail_seconds
        self.bars = int(math.ceil(plan.seconds / (4 * self.beat_s)))
        self.scale = MODES[plan.mode]

    # -- helpers -----------------------------------------------------------------------------
    def run(self) -> dict[str, pretty_midi.PrettyMIDI]:
        parts = {"drums": self.drums(), "bass": self.bass(), "other": self.other(), "vocals": self.vocals()}
        out = {}
        for i, (stem, instruments) in enumerate(parts.items()):
            pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=self.p.tempo_bpm)
            for inst in instruments:
                inst.control_changes.insert(0, pretty_midi.ControlChange(91, self.p.reverb_sends[i], 0.0))
                inst.control_changes.append(pretty_midi.ControlChange(TAIL_CONTROLLER, 0, self.tail_s))
                pm.instruments.append(inst)
            out[stem] = pm
        return out

    def time(self, beat: float) -> float:
        """Seconds of a beat position, with swing on the off-beat eighths."""
        whole = math.floor(beat)
        frac = beat - whole
        if self.p.swing and abs(frac - 0.5) < 1e-9:
            frac += self.p.swing * 0.5
        return (whole + frac) * self.beat_s

    def note(self, inst, pitch: int, beat: float, beats: float, velocity: float, jitter_s: float = 0.006) -> None:
        start = max(0.0, self.time(beat) + float(self.rng.normal(0.0, jitter_s)))
        if start >= self.end_s or not 0 <= pitch <= 127:
            return
        end = min(start + max(beats * self.beat_s, 0.03), self.tail_s)
        vel = int(np.clip(round(velocity + self.rng.normal(0.0, 4.0)), 1, 127))
        inst.notes.append(pretty_midi.Note(velocity=vel, pitch=int(pitch), start=start, end=end))

    def degree(self, d: int) -> int:
        """Semitones above the tonic of scale degree ``d`` (any integer)."""
        return self.scale[d % 7] + 12 * (d // 7)

    def chord(self, beat: float) -> tuple[list[int], float]:
        """Chord tones (semitones above the tonic, root first) at ``beat`` and the chord's end beat."""
        p = self.p
        idx = int(beat // p.beats_per_chord)
        d = p.progression[idx % len(p.progression)]
        tones = [self.degree(d + 2 * k) for k in range(4 if p.sevenths else 3)]
        return tones, float((idx + 1) * p.beats_per_chord)

    def place(self, semitones: int, lo: int) -> int:
        """The pitch of ``key + semitones`` in the octave ``[lo, lo + 12)``."""
        return lo + (self.p.key + semitones - lo) % 12

    # -- drums -------------------------------------------------------------------------------
    def drums(self) -> list[pretty_midi.Instrument]:
        p, rng = self.p, self.rng
        inst = pretty_midi.Instrument(program=p.drum_kit, is_drum=True, name="drums")
        kick, snare, keeper, hat_step = self._groove()
        loud = rng.uniform(85, 115)
        fill_prob = 0.3 + 0.6 * p.density
        for bar in range(self.bars):
            b0 = 4 * bar
            section, pos = divmod(bar, p.section_bars)
            high = section % 2 == 1
            fill = (pos == p.section_bars - 1 or pos % 4 == 3) and rng.random() < fill_prob and bar < self.bars - 1
            fill_from = 16 - 4 * int(rng.integers(1, 3)) if fill else 16
            if pos == 0 and (bar > 0 or rng.random() < 0.5):
                self.note(inst, CRASH, b0, 2.0, loud)
            for s in range(fill_from):
                beat = b0 + s / 4
                if s in kick or (s % 2 == 0 and s not in snare and rng.random() < 0.12 * p.density):
                    self.note(inst, KICK, beat, 0.25, loud - (0 if s % 8 == 0 else 8))
                if s in snare:
                    self.note(inst, RIM if p.groove == "sparse" and not high else SNARE, beat, 0.25, loud)
                elif s % 2 == 1 and rng.random() < 0.15 * p.density:
                    self.note(inst, SNARE, beat, 0.25, loud * 0.35)  # ghost note
                # Cymbals ring for seconds in the SoundFont (and cost render time), so the ride
                # plays quarter notes in high-energy sections only; hats keep time otherwise.
                if p.groove == "four" and s % 4 == 2:
                    self.note(inst, OPEN_HAT, beat, 0.5, loud * 0.7)
                elif high and keeper == HAT and p.groove in ("rock", "halftime", "shuffle"):
                    if s % 4 == 0:
                        self.note(inst, RIDE, beat, 0.25, loud * 0.8)
                elif s % hat_step == 0:
                    voice = OPEN_HAT if high and keeper == HAT and s % 4 == 2 else keeper
                    accent = 1.0 if s % 4 == 0 else 0.75 if s % 2 == 0 else 0.6
                    self.note(inst, voice, beat, 0.25, loud * accent * 0.85)
                if p.groove == "shuffle" and s in (4, 12):
                    self.note(inst, PEDAL_HAT, beat, 0.25, loud * 0.6)
            if fill:
                toms = TOMS[int(rng.integers(0, 2)):]
                step = 1 if rng.random() < 0.5 + 0.4 * p.density else 2
                hits = range(fill_from, 16, step)
                for k, s in enumerate(hits):
                    voice = SNARE if rng.random() < 0.3 else toms[k * len(toms) // len(hits)]
                    self.note(inst, voice, b0 + s / 4, 0.25, loud * (0.75 + 0.25 * k / 8))
        return [inst]

    def _groove(self) -> tuple[set[int], set[int], int, int]:
        """(kick 16ths, snare 16ths, time-keeping voice, its step in 16ths) of the song's groove."""
        p, rng = self.p, self.rng
        busy = p.density > 0.6
        extra = {int(rng.choice([6, 7, 10, 11, 14]))} if busy else set()
        if p.groove == "rock":
            return {0, 8} | extra, {4, 12}, HAT, 1 if busy and p.tempo_bpm < 120 else 2
        if p.groove == "four":
            return {0, 4, 8, 12}, {4, 12}, HAT, 2 if busy else 4
        if p.groove == "halftime":
            return {0, 10} | extra, {8}, HAT, 2 if p.tempo_bpm > 100 else 1
        if p.groove == "hiphop":
            return {0, 7, 10} | extra, {4, 12}, HAT, 1 if busy else 2
        if p.groove == "shuffle":
            return {0, 8}, {4, 12}, HAT, 2
        return {0, 10}, {4, 12}, SHAKER if busy else PEDAL_HAT, 2 if busy else 4

    # -- bass --------------------------------------------------------------------------------
    def bass(self) -> list[pretty_midi.Instrument]:
        p, rng = self.p, self.rng
        inst = pretty_midi.Instrument(program=p.bass_program, name="bass")
        lo = int(rng.integers(28, 34))
        vel = rng.uniform(80, 110)
        syncopation = sorted({0, *rng.choice([3, 6, 8, 10, 11, 14], size=3, replace=False).tolist()})
        for beat in range(4 * self.bars):
            tones, chord_end = self.chord(beat)
            root = self.place(tones[0], lo)
            fifth = root + (tones[2] - tones[0])
            first = beat % p.beats_per_chord == 0
            pat = p.bass_pattern
            if pat == "whole":
                if first:
                    self.note(inst, root, beat, p.beats_per_chord * 0.95, vel)
            elif pat == "quarters":
                self.note(inst, root, beat, 0.9, vel - (0 if first else 10))
            elif pat == "root_fifth":
                if beat % 2 == 0:
                    self.note(inst, root if beat % 4 == 0 else fifth, beat, 1.8, vel)
            elif pat in ("eighths", "octaves"):
                for h in (0, 0.5):
                    pitch = root + 12 if pat == "octaves" and h else root
                    self.note(inst, pitch, beat + h, 0.45, vel - (0 if h == 0 else 12))
            elif pat == "syncopated":
                for s in syncopation:
                    if beat % 4 == s // 4:
                        pitch = fifth if s in (10, 14) and rng.random() < 0.4 else root
                        self.note(inst, pitch, beat + (s % 4) / 4, 0.45 + 0.4 * (s == 0), vel - 6 * (s % 4 != 0))
            else:  # walking: root on the chord change, chord or scale tones, then an approach note
                if first:
                    pitch = root
                elif beat + 1 >= chord_end:
                    nxt = self.place(self.chord(chord_end)[0][0], lo)
                    pitch = nxt + int(rng.choice([-1, 1, -2, 2]))
                else:
                    pitch = self.place(int(rng.choice(tones[1:] + [self.degree(int(rng.integers(7)))])), lo)
                self.note(inst, pitch, beat, 0.9, vel - (0 if first else 8))
        return [inst]

    # -- other (keys, guitars, pads) ---------------------------------------------------------
    def other(self) -> list[pretty_midi.Instrument]:
        p, rng = self.p, self.rng
        layers = []
        pans = (64,) if len(p.other_programs) == 1 else tuple(int(64 + s * rng.uniform(15, 45)) for s in (-1, 1))
        for k, (program, pattern) in enumerate(zip(p.other_programs, p.other_patterns)):
            inst = pretty_midi.Instrument(program=program, name=f"other{k}")
            inst.control_changes.append(pretty_midi.ControlChange(10, pans[k], 0.0))
            inst.control_changes.append(pretty_midi.ControlChange(93, int(rng.integers(0, 60)), 0.0))
            lo = int(rng.integers(52, 60)) if pattern != "arpeggio" else int(rng.integers(55, 64))
            vel = rng.uniform(55, 80) if pattern == "pad" else rng.uniform(65, 100)
            strum = 0.012 if program in GUITAR_PROGRAMS else 0.0
            rhythm = [[2, 6, 10, 14], [0, 3, 6, 10, 12], [0, 6, 8, 14], [4, 12], [0, 4, 8, 10, 12]][rng.integers(5)]
            arp_step = 0.25 if p.tempo_bpm < 115 and p.density > 0.5 else 0.5
            order = ("up", "down", "updown")[rng.integers(3)]
            for beat in range(4 * self.bars):
                tones, chord_end = self.chord(beat)
                voicing = sorted(self.place(t, lo) for t in tones)
                first = beat % p.beats_per_chord == 0
                if pattern == "pad":
                    if first:
                        for n in voicing:
                            self.note(inst, n, beat, p.beats_per_chord - 0.1, vel, 0.002)
                elif pattern == "stabs":
                    for s in rhythm:
                        if beat % 4 == s // 4:
                            for j, n in enumerate(voicing):
                                self.note(inst, n, beat + (s % 4) / 4 + j * strum / self.beat_s, 0.4, vel)
                elif pattern == "arpeggio":
                    seq = voicing + [n + 12 for n in voicing]
                    seq = seq[::-1] if order == "down" else seq + seq[-2:0:-1] if order == "updown" else seq
                    steps = int(round(1 / arp_step))
                    for h in range(steps):
                        i = int((beat % p.beats_per_chord) * steps + h)
                        self.note(inst, seq[i % len(seq)], beat + h * arp_step, arp_step * 1.5, vel - 8 * (h > 0))
                else:  # broken chord: low root on the chord change, upper chord tones in eighths
                    if first:
                        self.note(inst, voicing[0] - 12, beat, min(2.0, p.beats_per_chord) - 0.1, vel)
                    for h in (0, 0.5):
                        if not (first and h == 0):
                            self.note(inst, voicing[int(rng.integers(1, len(voicing)))], beat + h, 0.45, vel - 12)
            layers.append(inst)
        return layers

    # -- vocals ------------------------------------------------------------------------------
    def vocals(self) -> list[pretty_midi.Instrument]:
        p, rng = self.p, self.rng
        inst = pretty_midi.Instrument(program=p.vocal_program, name="vocals")
        lo, hi = p.vocal_center - 8, p.vocal_center + 9
        rate_hz, depth_cents = rng.uniform(4.5, 6.5), rng.uniform(15, 50)
        motifs = [self._rhythm(8.0) for _ in range(2)]
        form = [0, 0, 1, 0] if rng.random() < 0.5 else [0, 1, 0, 1]
        phrases = int(math.ceil(4 * self.bars / 8))
        singing = [k < 2 and phrases <= 2 or rng.random() < 0.7 for k in range(phrases)]
        if not any(singing[: max(1, phrases - 1)]):  # the last phrase may start after the end
            singing[0] = True
        prev = self.place(0, lo + 4)
        for k in range(phrases):
            if not singing[k]:
                continue
            for start, length in motifs[form[k % 4]]:
                beat = 8 * k + start
                tones, _ = self.chord(beat)
                strong = abs(beat - round(beat)) < 1e-9
                if strong or rng.random() < 0.3:
                    cands = [self.place(t, q) for t in tones for q in (lo, lo + 12)]
                else:
                    cands = [self.place(self.degree(d), q) for d in range(7) for q in (lo, lo + 12)]
                    cands = [c for c in cands if 0 < abs(c - prev) <= 4] or cands
                cands = [c for c in cands if lo <= c <= hi] or [prev]
                weights = np.exp(-np.abs(np.array(cands) - prev) / 2.5)
                pitch = int(cands[rng.choice(len(cands), p=weights / weights.sum())])
                self.note(inst, pitch, beat, length * 0.95, 85 + 20 * rng.random(), 0.01)
                prev = pitch
        self._bends(inst, rate_hz, depth_cents)
        return [inst]

    def _rhythm(self, beats: float) -> list[tuple[float, float]]:
        """A sung phrase: (start, length) pairs in beats, ending with a held note and a rest."""
        rng, dens = self.rng, self.p.density
        lengths = np.array([0.5, 1.0, 1.5, 2.0])
        weights = np.array([0.2 + 0.6 * dens, 0.45, 0.15, 0.35 - 0.25 * dens])
        t = float(rng.choice([0.0, 0.0, 0.5, 1.0]))
        stop = beats - float(rng.choice([1.0, 2.0, 3.0]))
        out = []
        while t < stop - 0.5:
            length = float(rng.choice(lengths, p=weights / weights.sum()))
            length = min(length, stop - t)
            out.append((t, length))
            t += length + (0.5 if rng.random() < 0.15 else 0.0)
        if out:
            s, length = out[-1]
            out[-1] = (s, max(length, min(2.0, beats - s - 0.5)))
        return out

    def _bends(self, inst: pretty_midi.Instrument, rate_hz: float, depth_cents: float) -> None:
        """Scoops into some notes and delayed vibrato on held ones (pitch-bend range ±2 semitones)."""
        bends = []
        per_cent = 8192 / 200.0
        for n in inst.notes:
            dur = n.end - n.start
            scoop = self.rng.random() < 0.35
            bends.append((n.start, -self.rng.uniform(30, 70) if scoop else 0.0))
            if scoop:
                bends.append((n.start + 0.04, -15.0))
                bends.append((n.start + 0.08, 0.0))
            onset = n.start + self.rng.uniform(0.12, 0.25)
            t = onset
            while t < n.end - 0.02 and dur > 0.3:
                ramp = min(1.0, (t - onset) / 0.2)
                bends.append((t, depth_cents * ramp * math.sin(2 * math.pi * rate_hz * (t - onset))))
                t += 0.025
        bends.sort(key=lambda b: b[0])
        inst.pitch_bends = [pretty_midi.PitchBend(int(np.clip(round(c * per_cent), -8192, 8191)), t) for t, c in bends]
