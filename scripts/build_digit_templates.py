"""Build src/couchmate/watch/digits.npz: digit templates from real engine frames.

For every profile field read with `reader = "digits"`, this plays the field's engine
(ale-py for the Atari games, ViZDoom for Doom's ammo table) with a random policy, crops the
field exactly as the reader does, splits it into glyph blobs, and labels each blob with the
digit the engine's own counters say is shown. A blob shape seen with one label in (almost)
every frame becomes a template; shapes that disagree (the HUD lags the engine by a tic)
are dropped. Run it again when a profile's digit region changes:

    .venv/bin/python scripts/build_digit_templates.py
"""

from __future__ import annotations

import argparse
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

import numpy as np

from couchmate.watch import digits as D
from couchmate.watch.profile import FieldSpec, load_profile

Truth = dict[str, int]

# font → (profile, {field: truth key}), the engine that shows it, and whether interlaced
ATARI = {
    "atari-pong": ("pong", "atari-pong", {"player_score": "score", "opponent_score": "opp"}),
    "atari-breakout": ("breakout", "atari-breakout", {"score": "score", "lives": "lives"}),
    "atari-mspacman": ("ms_pacman", "atari-mspacman", {"score": "score"}),
    "atari-spaceinvaders": (
        "space_invaders",
        "atari-spaceinvaders",
        {"score": "score", "lives": "lives"},
    ),
}
INTERLACED = {"atari-spaceinvaders"}
DOOM_FIELDS = {"bullets": "bullets", "shells": "shells", "rockets": "rockets", "cells": "cells"}
DOOM_RESOLUTIONS = ("320X240", "640X480", "800X600", "1280X960")


def atari_frames(game: str, steps: int, seed: int) -> Iterator[tuple[np.ndarray, Truth]]:
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(game))
    acts = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    score = opp = 0
    a = acts[0]
    for i in range(steps):
        if ale.game_over():
            ale.reset_game()
            score = opp = 0
        if game == "breakout" and rng.random() < 0.9:
            a = _breakout_chase(ale)  # random play rarely scores past 5: chase the ball
        elif rng.random() < 0.15:
            a = acts[rng.integers(len(acts))]
        r = ale.act(a)
        score += max(0, r)
        opp += max(0, -r)
        if i % 3 == 0:
            yield ale.getScreenRGB(), {"score": score, "opp": opp, "lives": ale.lives()}


def _breakout_chase(ale):
    from ale_py import Action

    ram = ale.getRAM()
    ball_x, paddle_x = int(ram[99]), int(ram[72])
    if ball_x == 0:
        return Action.FIRE
    if ball_x > paddle_x + 10:
        return Action.RIGHT
    if ball_x < paddle_x + 6:
        return Action.LEFT
    return Action.NOOP


def doom_frames(resolution: str, steps: int, seed: int) -> Iterator[tuple[np.ndarray, Truth]]:
    import vizdoom as vzd

    g = vzd.DoomGame()
    g.load_config(os.path.join(os.path.dirname(vzd.__file__), "scenarios", "deathmatch.cfg"))
    g.set_episode_timeout(0)
    g.set_seed(seed)
    g.set_screen_resolution(getattr(vzd.ScreenResolution, "RES_" + resolution))
    g.set_screen_format(vzd.ScreenFormat.RGB24)
    g.set_render_hud(True)
    g.set_window_visible(False)
    gv = vzd.GameVariable
    g.set_available_game_variables([gv.AMMO2, gv.AMMO3, gv.AMMO5, gv.AMMO6])
    g.init()
    rng = np.random.default_rng(seed)
    n = g.get_available_buttons_size()
    gifts = ["clip", "shells", "rocketbox", "cell", "backpack", "ammo", "shotgun", "chaingun"]
    gifts += ["rocketlauncher", "plasmarifle", "supershotgun"]
    try:
        for i in range(steps):
            if g.is_episode_finished() or g.is_player_dead():
                g.new_episode()
            if rng.random() < 0.05:
                g.send_game_command("give " + gifts[rng.integers(len(gifts))])
            a = [0] * n
            a[rng.integers(n)] = 1
            a[0] = int(rng.random() < 0.6)  # fire a lot: the counters must move
            g.make_action(a, 2)
            s = g.get_state()
            if s is not None and i % 2 == 0:
                v = [int(x) for x in s.game_variables]
                yield s.screen_buffer, dict(zip(DOOM_FIELDS.values(), v, strict=True))
    finally:
        g.close()


class Collector:
    """Blob shape → label votes, per font."""

    def __init__(self) -> None:
        self.votes: dict[str, dict[bytes, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self.shapes: dict[str, dict[bytes, tuple[np.ndarray, float]]] = defaultdict(dict)

    def add(self, font: str, crop: np.ndarray, spec: FieldSpec, value: int) -> None:
        mask = D.foreground(crop, spec.fg, spec.fg_tolerance)
        if font in INTERLACED:
            mask = D.close_interlace(mask)
        blobs = D.segment(mask)
        if not blobs:
            return
        tallest = max(b.y1 - b.y0 for b in blobs)
        blobs = [b for b in blobs if (b.y1 - b.y0) >= 0.5 * tallest and (b.y1 - b.y0) >= 2]
        label = str(value)
        if len(blobs) > len(label):
            label = label.zfill(len(blobs))  # Breakout "003", Space Invaders "0020"
        if len(blobs) != len(label):
            return
        for b, ch in zip(blobs, label, strict=True):
            sub = mask[b.y0 : b.y1, b.x0 : b.x1]
            key = bytes(sub.shape) + np.packbits(sub).tobytes()
            self.votes[font][key][ch] += 1
            if key not in self.shapes[font]:
                self.shapes[font][key] = D.normalise(mask, b)

    def fonts(self, min_votes: int = 2, min_share: float = 0.8) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for font, votes in sorted(self.votes.items()):
            glyphs, labels, aspects = [], [], []
            seen: set[tuple[str, bytes]] = set()
            for key, c in votes.items():
                ch, n = c.most_common(1)[0]
                if n < min_votes or n / sum(c.values()) < min_share:
                    continue
                g, aspect = self.shapes[font][key]
                dedup = (ch, np.round(g, 2).tobytes() + np.float32(round(aspect, 2)).tobytes())
                if dedup in seen:
                    continue
                seen.add(dedup)
                glyphs.append(g)
                labels.append(ch)
                aspects.append(aspect)
            out[f"{font}/glyphs"] = np.array(glyphs, np.float32)
            out[f"{font}/labels"] = np.array(labels)
            out[f"{font}/aspects"] = np.array(aspects, np.float32)
            out[f"{font}/interlaced"] = np.array(font in INTERLACED)
            print(f"{font}: {len(labels)} templates, digits {''.join(sorted(set(labels)))}")
        return out


def collect(
    c: Collector,
    font: str,
    profile: str,
    fields: dict[str, str],
    frames: Callable[[], Iterator[tuple[np.ndarray, Truth]]],
) -> None:
    prof = load_profile(profile)
    for img, truth in frames():
        h, w = img.shape[:2]
        for fname, key in fields.items():
            spec = prof.fields[fname]
            x0, y0, x1, y1 = prof.box(fname, w, h)
            c.add(font, img[y0:y1, x0:x1], spec, truth[key])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atari-steps", type=int, default=30000)
    ap.add_argument("--doom-steps", type=int, default=3000)
    ap.add_argument("--out", default=str(D.FONT_FILE))
    args = ap.parse_args()
    c = Collector()
    for font, (game, profile, fields) in ATARI.items():
        for seed in (0, 1):
            collect(
                c,
                font,
                profile,
                fields,
                lambda g=game, s=seed: atari_frames(g, args.atari_steps, s),
            )
    for res in DOOM_RESOLUTIONS:
        collect(
            c, "doom-small", "doom", DOOM_FIELDS, lambda r=res: doom_frames(r, args.doom_steps, 0)
        )
    np.savez_compressed(args.out, **c.fonts())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
