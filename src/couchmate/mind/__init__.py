"""The companion's mind: when to speak, by which path, and what to say.

persona.py   persona packs (YAML data in personas/): style, voices, reflex line banks
reflex.py    a line from the bank in microseconds: slots from the state, no repeats
moments.py   what a moment is; budgets, priorities and staleness per kind
router.py    reflex | fast | smart for each moment, and why (pure; health-aware)
scenes.py    scene novelty (fingerprints, or a perceptual hash of the keyframe)
director.py  whether and when to speak; the one-at-a-time queue (pre-emption, staleness)
prompt.py    the model prompt; screen text kept as untrusted, quoted data
dialogue.py  the conversation, task wording, streaming a reply into pieces
splitter.py  streamed text → speakable pieces (first clause first)
backends.py  what the mind needs of a model backend
mind.py      the Mind facade the session uses
replay.py    replaying a recorded session through a Mind (bench router, tests)
memory_slot.py  the interface long-term memory fills
"""
