"""Make the demo site's PDF minutes: ``dokument/protokoll-samverkansgruppen-2024-09-18.pdf``.

Needs fpdf2 and a TrueType font with å, ä and ö (DejaVu Sans or Liberation Sans; pass another
with ``--font``). The output is reproducible: the creation date is fixed. Run from the repo root:

    .venv/bin/python data/demo_site/make_pdf.py [--font /path/to/Font.ttf]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

OUT = Path(__file__).resolve().parent / "dokument" / "protokoll-samverkansgruppen-2024-09-18.pdf"
FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/arial.ttf",
]

NEXT_LINE = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT, "align": "L"}
TITLE = "Protokoll, Samverkansgruppen 18 september 2024"
# (kind, text): h = heading, p = paragraph, li = list item
CONTENT: list[tuple[str, str]] = [
    ("p", "Samordningsförbundet Ålviksbygden"),
    ("p", "Datum: onsdag den 18 september 2024 kl. 9.00–11.30. Plats: Medborgarhuset, Storgatan 14, Ålvik."),
    ("h", "Närvarande"),
    ("li", "Maria Holm, Samordningsförbundet Ålviksbygden (ordförande)"),
    ("li", "Eva Ek, Socialförvaltningen, Ålviks kommun"),
    ("li", "Astrid Tornberg, Socialförvaltningen, Ålviks kommun"),
    ("li", "Peter Nordin, Norrsunds kommun (ej närvarande)"),
    ("li", "Henrik Dahl, Region Västermark"),
    ("li", "Karin Lund, Arbetsförmedlingen"),
    ("li", "Johan Berg, Försäkringskassan"),
    ("li", "Lena Sjöberg, Funktionsrätt Ålvik, brukarrådets representant"),
    ("li", "Nadia El-Amin, Samordningsförbundet Ålviksbygden (sekreterare)"),
    ("h", "§ 1 Mötets öppnande"),
    ("p", "Maria öppnade mötet och hälsade alla välkomna. Till justerare valdes Henrik Dahl."),
    ("h", "§ 2 Handlingsplan för 2025"),
    ("p", "Maria gick igenom förslaget till handlingsplan. Lena framförde brukarrådets synpunkter från mötet "
          "den 12 september: rådet vill att brukarinflytande blir ett eget prioriterat område. Gruppen instämde "
          "och konstaterade att det passar väl ihop med projektet Brukarinflytande i praktiken."),
    ("p", "Beslut: Samverkansgruppen ställer sig bakom förslaget till handlingsplan med brukarrådets tillägg. "
          "Planen lämnas till styrelsen inför sammanträdet den 22 november."),
    ("h", "§ 3 Den nya socialtjänstlagen"),
    ("p", "Eva informerade om att regeringen har föreslagit en ny socialtjänstlag som väntas träda i kraft den "
          "1 juli 2025. Kommunerna behöver se över sina rutiner för samverkan, särskilt när det gäller förebyggande "
          "insatser och stöd som kan ges utan föregående behovsprövning."),
    ("p", "Beslut: Astrid sammanställer vad den nya lagen innebär för samverkan kring personer med "
          "funktionsnedsättning och redovisar sammanställningen vid mötet i februari 2025."),
    ("h", "§ 4 Steget vidare"),
    ("p", "Karin rapporterade att 31 deltagare hittills har skrivits in och att nio av dem har fått ett arbete. "
          "Johan berättade att Försäkringskassan ser positiva effekter men att övergången från aktivitetsersättning "
          "ibland dröjer. Båda menade att gemensamma trepartsmöten tidigt i processen skulle korta väntetiderna."),
    ("p", "Beslut: Projektet fortsätter enligt plan. Karin och Johan tar fram ett förslag om gemensamma "
          "trepartsmöten senast den 31 oktober."),
    ("h", "§ 5 Övriga frågor"),
    ("p", "Henrik meddelade att vuxenpsykiatrins mottagning i Ålvik flyttar till nya lokaler i november. "
          "Information om den nya adressen skickas ut till alla samverkansparter i god tid."),
    ("h", "Åtgärdspunkter"),
    ("li", "Nadia skickar handlingsplanen till styrelsen senast den 1 oktober."),
    ("li", "Astrid redovisar vad den nya socialtjänstlagen innebär vid mötet i februari 2025."),
    ("li", "Karin och Johan återkommer med ett förslag om trepartsmöten senast den 31 oktober."),
    ("li", "Frågan om vem som betalar stödet vid praktik från daglig verksamhet tas upp vid nästa möte."),
    ("h", "Nästa möte"),
    ("p", "Onsdag den 16 oktober 2024 kl. 9.00 i Medborgarhuset."),
    ("p", "Vid pennan: Nadia El-Amin"),
    ("p", "Justeras: Henrik Dahl"),
]


def find_font() -> Path:
    """A TrueType font with Swedish letters: a known path, else whatever fontconfig offers."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    if shutil.which("fc-match"):
        found = subprocess.run(["fc-match", "-f", "%{file}", "DejaVu Sans:lang=sv"], capture_output=True, text=True).stdout
        if found.endswith(".ttf") and Path(found).is_file():
            return Path(found)
    raise SystemExit("no TrueType font found: pass one with --font")


def make_pdf(font: Path, out: Path = OUT) -> Path:
    """Write the minutes PDF with ``font`` and return its path."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2024, 9, 20, 9, 0, tzinfo=timezone.utc))
    pdf.set_title(TITLE)
    pdf.set_author("Nadia El-Amin")
    pdf.set_subject("Protokoll från samverkansgruppens möte")
    pdf.set_lang("sv-SE")
    pdf.set_creator("Samordningsförbundet Ålviksbygden")
    pdf.set_producer("fpdf2")
    pdf.add_font("Body", "", str(font))
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Body", size=16)
    pdf.multi_cell(0, 9, TITLE, **NEXT_LINE)
    pdf.ln(4)
    for kind, text in CONTENT:
        if kind == "h":
            pdf.ln(3)
            pdf.set_font("Body", size=13)
            pdf.multi_cell(0, 7, text, **NEXT_LINE)
            pdf.ln(1)
        elif kind == "li":
            pdf.set_font("Body", size=11)
            pdf.multi_cell(0, 6, f"• {text}", **NEXT_LINE)
        else:
            pdf.set_font("Body", size=11)
            pdf.multi_cell(0, 6, text, **NEXT_LINE)
            pdf.ln(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", type=Path, help="TrueType font file with å, ä, ö")
    args = parser.parse_args()
    print(make_pdf(args.font or find_font()))


if __name__ == "__main__":
    main()
