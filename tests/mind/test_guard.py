"""The guard between the model and the voice, on text SmolLM2-135M-Instruct really produced
for couchmate's own prompts (collected on this machine's llama.cpp server; each string below
is a piece exactly as the splitter handed it over), and on the personas' own lines, which
must all pass."""

from __future__ import annotations

import pytest

from couchmate.mind.dialogue import task_for
from couchmate.mind.guard import Guard, GuardPolicy, instruction_text, speech_seconds, words
from couchmate.mind.moments import Moment, synthetic_event
from couchmate.mind.persona import load_persona
from couchmate.mind.prompt import Identity, PromptBuilder
from couchmate.models.prompt import Turn
from tests.mind.support import event, state

T = 100.0


def prompt_for(kind: str, *, question: str = "", said_first: str = "", persona="sunny"):
    """The prompt couchmate sends for a moment (the state and events of the probe run)."""
    p = load_persona(persona)
    builder = PromptBuilder(p, lang="en", user=Identity("u", "Alex"))
    m = Moment(kind, T, 0.5, event=synthetic_event(kind, T), question=question)
    if kind == "lull":
        m.tags["why"] = "quiet for 12s"
    return builder.build(
        task_for(m, said_first=said_first),
        user_text=question,
        state=state(T, health=64, armor=20, ammo=31, frags=2),
        events=[event("damage_taken", T - 8, 0.4, health=64), event("kill", T - 5, 0.7)],
        history=[Turn("assistant", "Hey Alex! Ready to play?")],
        screen_text="PRESS USE TO OPEN THE DOOR",
        memory="Alex likes the super shotgun.",
        now=T,
    )


def sunny_guard(**policy) -> Guard:
    p = load_persona("sunny")
    return Guard(display_name=p.display_name, wpm=p.voice("en").wpm, policy=GuardPolicy(**policy))


def run(guard: Guard, kind: str, pieces: list[str], prompt=None, recent=()):
    """Feed a reply piece by piece as the mind does; what is said, and why it stopped."""
    g = guard.reply(kind, prompt, recent)
    said: list[str] = []
    for piece in pieces:
        said += g.feed(piece)
        if g.stopped:
            break
    else:
        said += g.finish()
    return said, g.reason


# --- what the real model said ------------------------------------------------------------------

# (kind, pieces as streamed, recent companion lines, the reason, what may still be said)
OBSERVED = [
    # The greeting read the persona's own description back, after a stray "Xx".
    (
        "greeting",
        ["Xx\nYou are Sunny,", "the player's cheerful friend on the couch."],
        [],
        "format",
        [],
    ),
    # A greeting that spoke the persona to itself; then the rules, then the state block.
    (
        "greeting",
        [
            "Hello there,",
            "little friend!",
            "Stay in character as Sunny and I'll be your friendly guide today!",
        ],
        [],
        "echo",
        ["Hello there,", "little friend!"],
    ),
    (
        "greeting",
        ["Let me know it for you next.", "Game: doom\nhealth: 64\narmor: 20\nammo: 31"],
        [],
        "format",
        ["Let me know it for you next."],
    ),
    # A death analysis that read the task aloud.
    (
        "death",
        ["The player just died.", "React in one short line; if the events show why, say it now."],
        ["Nice shot!", "Oh no! You'll get it next time."],
        "echo",
        [],
    ),
    (
        "death",
        ["You'll get it next time.", "- 8.0s ago: damage_taken (health=64)\nHere's how"],
        ["Nice shot!", "Oh no! You'll get it next time."],
        "repeat",
        [],
    ),
    # A lull comment that was the greeting again, word for word.
    (
        "lull",
        ["Hey Alex!", "Ready to play?", "What do you need to know"],
        ["Hey Alex! Ready to play?"],
        "repeat",
        [],
    ),
    # …and one that talked about itself as a model.
    (
        "lull",
        [
            "You're just playing.",
            "You are an AI that doesn't take notes, doesn't keep log entries in any sort of "
            "format that isn't plain text.",
        ],
        [],
        "self_talk",
        ["You're just playing."],
    ),
    (
        "player_message",
        [
            "You don't have to mention anything for this one.",
            "It seems the player wants a little something in character: tips, but none of "
            "them are in your game.",
        ],
        [],
        "self_talk",
        ["You don't have to mention anything for this one."],
    ),
    # "who are you?" answered with the system message, the persona told to itself.
    (
        "player_message",
        ["You're Sunny,", "the player's cheerful friend on the couch."],
        [],
        "self_talk",
        [],
    ),
    # "did you see that?" answered as a made-up transcript.
    (
        "player_message",
        ['A: "I just saw that...', 'I am the one who killed you."'],
        [],
        "echo",
        [],
    ),
    # "what's my health?" answered with a transcript of the prompt.
    (
        "player_message",
        ["You say:", '"My health is 64."', "The player says: What's my health?"],
        [],
        "echo",
        [],
    ),
]


@pytest.mark.parametrize(("kind", "pieces", "recent", "reason", "kept"), OBSERVED)
def test_what_the_real_model_said_is_stopped_where_it_goes_wrong(
    kind, pieces, recent, reason, kept
):
    prompt = prompt_for(
        kind,
        question="who are you?" if kind == "player_message" else "",
        said_first="Oh no! You'll get it next time." if kind == "death" else "",
    )
    guard = sunny_guard()
    said, why = run(guard, kind, pieces, prompt, recent)
    assert why == reason, (said, why)
    assert said == kept
    stats = guard.stats
    assert (stats.trimmed if kept else stats.dropped) == {reason: 1}


@pytest.mark.parametrize(
    ("persona", "line", "reason"),
    [
        # More lines SmolLM2 said through the Mind (the guard's log), each as one piece.
        ("deadpan", "You are Dex, the player's deadpan friend on the couch.", "echo"),
        ("deadpan", "Dex, the player's deadpan friend on the couch.", "echo"),
        ("sunny", "(narrating in character) You just killed the first death?", "format"),
        ("sunny", "I'd be happy to help you with that.", "self_talk"),
        ("sunny", "You're not a player, you're an AI assistant.", "self_talk"),
        ("sunny", "I can only provide a response in character.", "self_talk"),
        ("sunny", "If I didn't have an evil one who killed you in 9.8s ago, it was me.", "echo"),
        ("sunny", "The player says: What is my health again?", "echo"),
        ("sunny", "Oh no, you're getting it wrong again.", ""),
        ("sunny", "The boss is the one with the evil face.", ""),
        ("deadpan", "So, you know how to play?", ""),
    ],
)
def test_more_real_lines(persona, line, reason):
    p = load_persona(persona)
    guard = Guard(display_name=p.display_name, wpm=p.voice("en").wpm)
    text = instruction_text(prompt_for("player_message", persona=persona))
    assert guard.check(line, instructions=text) == reason


def test_the_reported_greeting_instruction_is_never_spoken():
    """The user's report: the greeting was the task itself, read aloud."""
    said, why = run(
        sunny_guard(),
        "greeting",
        ["Greet the player in one short line."],
        prompt_for("greeting"),
    )
    assert said == [] and why == "echo"


def test_a_long_answer_is_cut_at_the_routes_length():
    # The real answer to "any tips for this level?": ten sentences, ~30 s at Sunny's pace.
    pieces = [
        "Well, you might want to be prepared.",
        "Always remember that this game is for the player's life!",
        "You can't improve it if you don't care about yourself!",
        "Let's say you're new to it, you should try and ask a few questions.",
        "The enemy won't give you any damage on their first kill.",
        "They have all the damage taken already!",
        "But you still need to avoid death in order to continue.",
        "So remember to do what they want you to.",
        "You can choose your next attack when you want, or not.",
    ]
    guard = sunny_guard()
    said, why = run(guard, "player_message", pieces, prompt_for("player_message"))
    assert why == "too_long" and 1 <= len(said) < len(pieces)
    assert speech_seconds(" ".join(said), 175) <= guard.policy.max_seconds("player_message")
    # The same length is too long for a lull comment, which gets less.
    said_lull, _ = run(sunny_guard(), "lull", pieces, prompt_for("lull"))
    assert len(said_lull) < len(said)


def test_a_reply_that_repeats_itself_is_cut_at_the_repeat():
    # Observed in a reply to "who are you?" (after its echo, which is stopped first anyway).
    pieces = ["You talk like a friend.", "Always smile.", "You talk like a friend."]
    said, why = run(sunny_guard(), "player_message", pieces)
    assert said == pieces[:2] and why == "repeat"


def test_clean_real_replies_pass_unchanged():
    for kind, pieces in [
        (
            "player_message",
            ["Oh no, not the boss you're referring to.", "You're referring to the enemy."],
        ),
        ("player_message", ["Sit down and tell me your name."]),
        (
            "greeting",
            ["Oh my god,", "I'm so happy to know about the game.", "It's a fantastic game!"],
        ),
    ]:
        said, why = run(sunny_guard(), kind, pieces, prompt_for(kind), ["Hey Alex! Ready to play?"])
        assert (said, why) == (pieces, "")


def test_a_short_start_is_held_only_while_it_could_be_a_repeat():
    guard = sunny_guard()
    g = guard.reply("lull", prompt_for("lull"), ["Hey Alex! Ready to play?"])
    assert g.feed("Hey Alex!") == []  # could be the greeting again: wait for the next piece
    assert g.feed("Nice shooting back there.") == ["Hey Alex!", "Nice shooting back there."]
    assert guard.stats.held == 1
    g = guard.reply("lull", prompt_for("lull"), ["Hey Alex! Ready to play?"])
    assert g.feed("Hey Alex!") == []
    assert g.finish() == ["Hey Alex!"]  # nothing followed: alone it is fine
    g = guard.reply("lull", prompt_for("lull"), ["Hey Alex! Ready to play?"])
    assert g.feed("Having fun?") == ["Having fun?"]  # nothing to wait for


def test_a_hud_value_handed_to_the_model_is_no_instruction_to_echo():
    p = load_persona("sunny")
    builder = PromptBuilder(p, lang="en", user=Identity("u", "Alex"))
    m = Moment("player_message", T, 1.0, question="what's my health?")
    m.tags["hud"] = "The game's HUD shows health = 0 right now."  # the mind's hint
    prompt = builder.build(task_for(m), user_text=m.question, state=state(T, health=0))
    text = instruction_text(prompt)
    assert "Answer the player" in text and "HUD shows" not in text
    # Observed from SmolLM2 with that hint: the answer itself.
    assert sunny_guard().check('"Health is 0 right now."', instructions=text) == ""


def test_headers_of_a_made_up_transcript_are_echoes_but_i_do_not_know_is_honest():
    guard, text = sunny_guard(), instruction_text(prompt_for("player_message"))
    # Observed answers: the task's "Now:" header, and the player as a speaker.
    now = "Now: Answer that, but with an ammo-saving trick..."
    assert guard.check(now, instructions=text) == "echo"
    assert guard.check("The player: Ah!", instructions=text) == "echo"
    # "do not know" is in the rules, but saying so is what rule 6 asks for.
    assert guard.check("I don't know...", instructions=text) == ""


def test_an_assistants_voice_is_self_talk_but_game_rules_are_not():
    guard, text = sunny_guard(), instruction_text(prompt_for("lull"))
    # Both observed in lull comments, after the greeting.
    assert guard.check("I'm happy to help.", instructions=text) == "self_talk"
    asked = "What do you need to know, and what can I help you with today?"
    assert guard.check(asked, instructions=text) == "self_talk"
    assert guard.check("This rules!", instructions=text) == ""
    assert (
        guard.check("The rules here are simple: last one standing wins.", instructions=text) == ""
    )
    assert guard.check("The enemy AI is asleep.", instructions=text) == ""


# --- what must pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["sunny", "deadpan"])
def test_every_persona_line_passes_the_guard(persona):
    """The personas' own lines are what good speech looks like: none may be flagged, in
    any language, against a real prompt's instructions."""
    p = load_persona(persona)
    guard = Guard(display_name=p.display_name, wpm=p.voice("en").wpm)
    instructions = instruction_text(prompt_for("lull", persona=persona))
    values = {"health": "40", "armor": "20", "ammo": "12", "score": "1200", "lives": "2"}
    values |= {"frags": "3", "game": "Doom", "player": "Alex", "memory": "You like shotguns."}
    flagged = []
    for lang in p.languages:
        for kind, bank in p.banks[lang].items():
            for template in bank:
                text = template.render(values)
                why = guard.check(text, instructions=instructions)
                if why:
                    flagged.append((lang, kind, text, why))
    assert flagged == []


def test_screen_text_and_memory_notes_are_not_instructions():
    prompt = prompt_for("player_message", question="what does the sign say?")
    text = instruction_text(prompt)
    assert "Rules (fixed" in text and "Now: Answer the player" in text
    assert "PRESS USE" not in text and "super shotgun" not in text and "health: 64" not in text
    guard = sunny_guard()
    # Reading the screen or recalling a note is the point of them.
    assert guard.check("It says press use to open the door!", instructions=text) == ""
    assert guard.check("You like the super shotgun, right?", instructions=text) == ""


def test_words_spell_out_contractions_so_echoes_compare_equal():
    assert words("You're Sunny, aren't you?") == ["you", "are", "sunny", "are", "not", "you"]
    assert words("哎哟！") == ["哎", "哟"]
    assert speech_seconds("one two three four five six seven", 140) == pytest.approx(3.0)
