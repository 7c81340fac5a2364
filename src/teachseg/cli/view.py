"""CLI command: ``teachseg view OUT_DIR``, a local web page over ``predict``'s outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from teachseg.cli._app import app, console, out

PredictionsArg = Annotated[
    Path,
    typer.Argument(help="Folder written by `teachseg predict ... --out DIR`.", show_default=False),
]


@app.command("view")
def view(
    out_dir: PredictionsArg,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: a free one).")
    ] = 0,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. 127.0.0.1 (the default) keeps the page on this machine; another "
            "address shows the slides to whoever can reach it.",
        ),
    ] = "127.0.0.1",
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the page in the default web browser.")
    ] = True,
    slide_dir: Annotated[
        Path | None,
        typer.Option(
            "--slide-dir",
            help="Folder to look in (by file name) for slides moved since the prediction.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Look at the predictions in a browser: each slide zoomable, its probability map and outlines over it.

    Serves the folder's slides as tiles (OpenSeadragon, works offline) until Ctrl-C; prints the address.
    """
    import webbrowser

    from rich.markup import escape

    from teachseg.viewer.catalog import load_catalog
    from teachseg.viewer.server import Viewer, serve

    def warn(line: str) -> None:
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, markup=True, soft_wrap=True)

    catalog = load_catalog(out_dir, slide_dir)
    for line in catalog.warnings:
        warn(line)
    server = serve(Viewer(catalog, log=warn), host, port)
    try:
        if server.viewer.allowed_hosts is None:
            warn(f"listening on {host}: anyone who can reach this machine can see these slides")
        console.print(
            f"viewing {len(catalog.entries)} prediction(s) in {out_dir} at {server.url}; press Ctrl-C to stop",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        out.print(server.url, highlight=False, markup=False, soft_wrap=True)
        if browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped", highlight=False)
    finally:
        server.server_close()
