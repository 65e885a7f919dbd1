#!/usr/bin/env python3
"""Writes crates/hearth-guard/data/intl_given_names.txt, intl_surnames.txt and
intl_given_places.txt, and en_names_that_are_words.txt.

Given names and surnames in Latin script from the person providers of the PyPI package
Faker (pinned below; MIT licence, (c) joke2k and contributors) for European, American,
African and romanised Japanese locales, minus what the census lists already hold, minus
words that Debian's `wamerican` word list (/usr/share/dict/words) has in lower case
(given names that are also English words, such as "Can" or "Baker", would make
capitalised phrases look like names), minus names under three letters. intl_given_places.txt lists the given names kept that are
also a word of a place name in Faker's address providers (York, Berlin, Boston): such a
word alone is not taken as a name. en_names_that_are_words.txt lists the census given
names and surnames that wamerican has in lower case (will, see, rose): in text written
all in lower case they are not taken as names.

    python3 -m venv /tmp/fk && /tmp/fk/bin/pip install Faker==37.1.0
    apt-get install wamerican
    /tmp/fk/bin/python tools/intl_given_names.py
"""
import importlib
import pathlib
import unicodedata

import faker

FAKER_VERSION = "37.1.0"
LOCALES = """cs_CZ da_DK de_AT de_CH de_DE en en_GB en_IE en_NZ en_US es es_AR es_CL es_CO es_ES
es_MX et_EE fi_FI fr_BE fr_CA fr_CH fr_FR ga_IE hr_HR hu_HU id_ID it_IT lt_LT lv_LV nl_BE
nl_NL no_NO pl_PL pt_BR pt_PT ro_RO sk_SK sl_SI sv_SE tr_TR vi_VN az_AZ sw yo_NG zu_ZA
tw_GH""".split()
GIVEN_ATTRS = ["first_names", "first_names_male", "first_names_female", "first_names_nonbinary"]
SURNAME_ATTRS = ["last_names", "last_names_male", "last_names_female"]
ROMANISED_JA = (["first_romanized_names", "first_romanized_names_male",
                 "first_romanized_names_female"], ["last_romanized_names"])

DATA = pathlib.Path(__file__).resolve().parent.parent / "crates/hearth-guard/data"


def latin_word(w):
    return bool(w) and w[0].isupper() and all(
        (c.isalpha() and "LATIN" in unicodedata.name(c, "")) or c in "'-" for c in w)


def names(provider, attrs):
    out = set()
    for attr in attrs:
        v = getattr(provider, attr, None)
        if not v or isinstance(v, property):
            continue
        out.update(w for w in (v.keys() if isinstance(v, dict) else v) if latin_word(w))
    return out


def census(name):
    return {l.split()[0] for l in (DATA / name).read_text().splitlines()
            if l.strip() and not l.startswith("#")}


def place_words():
    import faker.providers.address as addresses
    import pkgutil
    words = set()
    keys = ("cit", "countr", "state", "province", "region", "town", "village", "municipal",
            "department", "district")
    for m in pkgutil.iter_modules(addresses.__path__):
        p = importlib.import_module(f"faker.providers.address.{m.name}").Provider
        for attr in dir(p):
            v = getattr(p, attr, None)
            if any(k in attr for k in keys) and isinstance(v, (list, tuple, set, dict)):
                for place in v:
                    if isinstance(place, str):
                        words.update(t.upper() for t in place.replace("-", " ").split())
    return words


def main():
    assert faker.VERSION == FAKER_VERSION, f"expected Faker {FAKER_VERSION}, have {faker.VERSION}"
    given, surnames = set(), set()
    for loc in LOCALES:
        p = importlib.import_module(f"faker.providers.person.{loc}").Provider
        given |= names(p, GIVEN_ATTRS)
        surnames |= names(p, SURNAME_ATTRS)
    ja = importlib.import_module("faker.providers.person.ja_JP").Provider
    given |= names(ja, ROMANISED_JA[0])
    surnames |= names(ja, ROMANISED_JA[1])
    lower_words = {w.strip() for w in open("/usr/share/dict/words") if w[:1].islower()}
    worded = sorted(w for w in census("en_given_names.txt") | census("en_surnames.txt")
                    if w.lower() in lower_words)
    (DATA / "en_names_that_are_words.txt").write_text(
        "# Census given names and surnames (en_given_names.txt, en_surnames.txt) that Debian's\n"
        "# wamerican word list has in lower case: not names in all-lower-case text.\n"
        "# Written by tools/intl_given_names.py.\n" + "\n".join(worded) + "\n")
    print(f"en_names_that_are_words.txt: {len(worded)} names")
    for (found, census_file, out_file, what) in [
        (given, "en_given_names.txt", "intl_given_names.txt", "given names"),
        (surnames, "en_surnames.txt", "intl_surnames.txt", "surnames"),
    ]:
        known = census(census_file)
        kept = sorted({w.upper() for w in found
                       if len(w) >= 3 and w.lower() not in lower_words} - known)
        header = (
            f"# Latin-script {what} of other locales, upper case, one per line.\n"
            f"# Source: the person providers of the PyPI package Faker {FAKER_VERSION} (MIT licence,\n"
            f"# (c) joke2k and contributors), locales {' '.join(LOCALES)} and romanised ja_JP;\n"
            f"# without names in {census_file}, names under three letters and words that Debian's\n"
            f"# wamerican list has in lower case. Written by tools/intl_given_names.py.\n")
        (DATA / out_file).write_text(header + "\n".join(kept) + "\n")
        print(f"{out_file}: {len(kept)} {what}")
        if out_file == "intl_given_names.txt":
            places = sorted(set(kept) & place_words())
            (DATA / "intl_given_places.txt").write_text(
                "# Given names of intl_given_names.txt that are also a word of a place name in the\n"
                f"# address providers of Faker {FAKER_VERSION} (MIT): not a name when alone.\n"
                "# Written by tools/intl_given_names.py.\n" + "\n".join(places) + "\n")
            print(f"intl_given_places.txt: {len(places)} given names that are places")


if __name__ == "__main__":
    main()
