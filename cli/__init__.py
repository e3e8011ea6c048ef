"""`kminer`: the command line and the GUI launcher, the top layer (cli -> ui -> app -> core).

`python -m cli` and the `kminer` console script run `cli.main.main`; each command group is a
module in `cli/commands/` with `register(subparsers)`; `cli.gui` builds and runs the window.
"""
