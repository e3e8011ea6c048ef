"""CLI command groups; each module has `register(subparsers)` and its handlers.

Building the parser imports every module here (`kminer --help`, every command's start, the
GUI's), so a module imports at its top only what that start loads anyway (app's
root helpers, the standard library); the domain it drives (app.miner, app.buyer, gpu, jobs,
wallet...) is imported inside the handlers, so each command loads only what it runs.
"""
