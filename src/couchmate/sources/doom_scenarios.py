"""The Doom scenarios `doom:NAME` can play, as data.

Every scenario runs as a one-player netgame (`-host 1`): co-op for the single-player maps,
deathmatch for the arena. A netgame lets the player die, lie dead on screen with the HUD at
0% and respawn, so the stream shows deaths instead of ending the episode on them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Shared by every deathmatch game: respawn at once, spread the spawns, no autoaim (our bot
# aims itself), and the timelimit far beyond a stream's episode so the engine never ends it.
_DEATHMATCH_ARGS = (
    "-host 1 -deathmatch +timelimit 10.0 +sv_noautoaim 1 "
    "+sv_respawnprotect 1 +sv_spawnfarthest 1 +sv_nocrouch 1 +viz_respawn_delay 0"
)
_COOP_ARGS = "-host 1 +viz_respawn_delay 0"


@dataclass(frozen=True, slots=True)
class DoomScenario:
    name: str
    config: str  # a .cfg shipped in vizdoom's scenarios folder
    summary: str
    hud: str  # the game profile the HUD matches
    doom_map: str | None = None  # None: the config's map
    game_args: str = _COOP_ARGS
    bots: tuple[str, ...] = ()  # ZDoom bots (names from vizdoom's bots.cfg) added each episode
    skill: int | None = None  # None: the config's skill
    episode_tics: int | None = None  # None: the config's timeout (0 = none)
    can_move: bool = True  # False: the scenario is about turning and shooting only
    # Some maps hand out their loadout in an ENTER script only: a respawned player would
    # start empty-handed, so those scenarios start a new episode on death instead.
    new_episode_on_death: bool = False

    @property
    def deathmatch(self) -> bool:
        """Other players are enemies (in co-op, a player-shaped actor is a voodoo doll)."""
        return "-deathmatch" in self.game_args


SCENARIOS: dict[str, DoomScenario] = {
    s.name: s
    for s in (
        DoomScenario(
            name="arena",
            config="cig.cfg",
            doom_map="map01",
            summary="deathmatch arena against ZDoom bots, rocket launchers; HUD shows FRAGS",
            hud="doom-deathmatch",
            game_args=_DEATHMATCH_ARGS,
            # Four of the weakest aimers of bots.cfg, so the scripted player scores frags,
            # and four good ones, so it also dies (one to four times a minute).
            bots=(
                "Conan",
                "Dredd",
                "Plissken",
                "Predator",
                "Rambo",
                "MacGyver",
                "T800",
                "Blazkowicz",
            ),
            episode_tics=35 * 60 * 5,
        ),
        DoomScenario(
            name="deathmatch",
            config="deathmatch.cfg",
            summary="big map full of monsters and weapons; single-player HUD with ARMS",
            hud="doom",
            episode_tics=35 * 60 * 3,
        ),
        DoomScenario(
            name="freedoom",
            config="freedoom2.cfg",
            doom_map="map01",
            summary="Freedoom Phase 2, MAP01: a real level with monsters, items, doors",
            hud="doom",
            skill=3,
            episode_tics=35 * 60 * 5,
        ),
        DoomScenario(
            name="health_gathering",
            config="health_gathering.cfg",
            summary="acid floor drains health; medikits keep you alive",
            hud="doom",
            episode_tics=0,
        ),
        DoomScenario(
            name="defend_the_center",
            config="defend_the_center.cfg",
            summary="stand in the middle, turn and shoot the monsters closing in",
            hud="doom",
            can_move=False,
            episode_tics=0,
            new_episode_on_death=True,
        ),
        DoomScenario(
            name="defend_the_line",
            config="defend_the_line.cfg",
            summary="a line of monsters that keep coming back; turn and shoot",
            hud="doom",
            can_move=False,
            episode_tics=0,
            new_episode_on_death=True,
        ),
        DoomScenario(
            name="deadly_corridor",
            config="deadly_corridor.cfg",
            summary="run a corridor past gunners to the armor at its end",
            hud="doom",
            episode_tics=0,
            new_episode_on_death=True,
        ),
        DoomScenario(
            name="basic",
            config="basic.cfg",
            summary="one monster at the far wall; each kill starts a new round",
            hud="doom",
            episode_tics=300,
            new_episode_on_death=True,
        ),
    )
}

DEFAULT_SCENARIO = "arena"
