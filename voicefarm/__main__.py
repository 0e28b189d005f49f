from voicefarm.cli import app

app(prog_name="voicefarm")
