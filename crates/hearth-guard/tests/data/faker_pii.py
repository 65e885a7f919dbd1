"""Writes a labelled PII set as JSON lines: {"text", "locale", "labels": [[kind, start, end]]}.

Spans are UTF-8 byte offsets. Values come from the PyPI package Faker with a fixed seed,
embedded in varied English and Chinese sentences; hard negatives (order numbers, dates,
times, versions, numbers failing their checksums, valid numbers inside longer digit runs,
IPs with an octet of 256, capitalised common words, street names without a number, company
names) carry no labels. PERSON and ADDRESS values come from Faker's en_US and zh_CN name
and address providers; Faker's en_US given names are nearly all in the census list the
recognizer uses (see hearth-guard's person.rs), so en_US name recall here is optimistic. Usage: python3 faker_pii.py OUT.jsonl [N]
"""
import json
import random
import sys

from faker import Faker

N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rng = random.Random(20240607)
Faker.seed(20240607)

GENERIC = [
    "{}", "See {} above.", "The value was {}, as noted.", "记录：{}。", "Here it is: {}",
    "({})", "请核对{}，谢谢。", "Updated on Monday - {} - by admin.", "字段值为{}",
    "Copied from the form: {};", "\"{}\"", "日志里出现了 {} 这一项",
]
CONTEXT = {
    "PHONE": ["Call me at {}.", "电话：{}", "My number is {} if you need it.", "联系方式{}",
              "Reach the office on {} tomorrow.", "手机号码 {}，请回电。", "Phone: {}"],
    "EMAIL": ["Write to {}.", "邮箱：{}", "Send the report to {} by Friday."],
    "CN_RESIDENT_ID": ["身份证号：{}", "公民身份号码{}已登记。", "ID card {} on file."],
    "CREDIT_CARD": ["Card number {} expires 09/27.", "卡号{}，请勿外传。", "Charge it to {}."],
    "IBAN": ["IBAN: {}", "Please transfer to {} before the 5th.", "收款账户（IBAN）{}"],
    "IPV4": ["Login from {} was blocked.", "服务器地址 {}", "ping {} failed"],
    "IPV6": ["Login from {} was blocked.", "服务器地址 {}", "route via {} now"],
    "PERSON": ["My name is {}.", "Dr. {} will see you now.", "Ask {} about the invoice.",
               "{} signed the form yesterday.", "Dear {},", "我叫{}，请多关照。", "姓名：{}",
               "联系人：{} 电话请见附件", "请{}先生到前台。", "收件人：{}"],
    "ADDRESS": ["Ship it to {}.", "收货地址：{}", "Our office: {}", "He moved to {} last May.",
                "地址是{}，请寄到这里。", "Return address {}"],
}


def byte_offset(text, char_index):
    return len(text[:char_index].encode("utf-8"))


def embed(kind, value):
    templates = GENERIC + CONTEXT.get(kind, [])
    t = rng.choice(templates)
    i = t.index("{}")
    text = t[:i] + value + t[i + 2:]
    return text, [[kind, byte_offset(text, i), byte_offset(text, i + len(value))]]


def join(a, b):
    (ta, la), (tb, lb) = a, b
    sep = rng.choice([" and ", "；另外，", ". Also ", "，"])
    shift = len((ta + sep).encode("utf-8"))
    return ta + sep + tb, la + [[k, s + shift, e + shift] for k, s, e in lb]


def luhn_ok(s):
    total = 0
    for i, c in enumerate(reversed(s)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def positives():
    out = []
    for loc in ["en_US", "zh_CN"]:
        f = Faker(loc)
        gens = {
            "EMAIL": f.email,
            "PHONE": f.phone_number,
            "CREDIT_CARD": f.credit_card_number,
            "IPV4": f.ipv4,
            "IPV6": f.ipv6,
        }
        if loc == "zh_CN":
            gens["CN_RESIDENT_ID"] = f.ssn
            # zh_CN: Faker's name() is surname + given name, no titles.
            gens["PERSON"] = f.name
        else:
            # en_US: given and family name; titles and suffixes (Dr., Jr.) are context,
            # not name (as in Presidio's labels).
            gens["PERSON"] = lambda f=f: f"{f.first_name()} {f.last_name()}"
        gens["ADDRESS"] = f.address
        for kind, gen in gens.items():
            for _ in range(N):
                out.append((loc, embed(kind, gen())))
    # IBANs from countries that have them (zh_CN's iban() writes 21-character "GB"
    # numbers, which no validator accepts, so it is left out).
    for loc in ["en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]:
        f = Faker(loc)
        for _ in range(N // 3):
            out.append((loc, embed("IBAN", f.iban())))
    # European phones, reported apart.
    for loc in ["en_GB", "de_DE", "fr_FR"]:
        f = Faker(loc)
        for _ in range(N // 3):
            out.append((loc, embed("PHONE", f.phone_number())))
    return out


def negatives(f):
    def flip_last(s):
        return s[:-1] + str((int(s[-1]) + rng.randint(1, 9)) % 10) if s[-1].isdigit() else s[:-1] + "0"

    cards = [c for c in (f.credit_card_number() for _ in range(50)) if len(c) >= 13]
    ids = [Faker("zh_CN").ssn() for _ in range(50)]
    ibans = [Faker("de_DE").iban() for _ in range(50)]
    out = []
    for _ in range(N):
        choice = rng.randrange(16)
        if choice == 0:
            text = f"Order #{rng.randint(10**9, 10**16)} shipped."
        elif choice == 1:
            text = f"订单号{rng.randint(10**10, 10**11 - 1)}已发货"
        elif choice == 2:
            text = f"Meeting on {f.date()} at {f.time()}."
        elif choice == 3:
            text = f"Released v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 999)} today"
        elif choice == 4:
            c = rng.choice(cards)
            bad = flip_last(c)
            if luhn_ok(bad):
                continue
            text = f"Card number {bad} was declined."
        elif choice == 5:
            i = rng.choice(ids)
            text = f"身份证号：{i[:17]}{'0' if i[17] != '0' else '1'}（校验失败）"
        elif choice == 6:
            i = rng.choice(ibans)
            pos = rng.randrange(4, len(i))
            d = str((int(i[pos]) + 1) % 10) if i[pos].isdigit() else i[pos]
            text = f"IBAN: {i[:pos]}{d}{i[pos + 1:]}"
        elif choice == 7:
            text = f"trace id {rng.randint(1, 99)}{rng.choice(cards)}{rng.randint(100, 999)}"
        elif choice == 8:
            text = f"流水号{rng.randint(10, 99)}{rng.choice(ids)}"
        elif choice == 9:
            o = [rng.randint(0, 255) for _ in range(4)]
            o[rng.randrange(4)] = 256
            text = "bad ip " + ".".join(map(str, o))
        elif choice == 10:
            text = f"Total: {rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}.{rng.randint(10, 99)} USD"
        elif choice == 11:
            text = f"Timestamp {f.date()}T{f.time()}Z, invoice {rng.randint(10**6, 10**9)}"
        elif choice == 12:
            # Capitalised common words, some of them also given names.
            text = rng.choice(["Will you come? May I join?", "The Grand Hotel Opens In June",
                               "Hope Springs Eternal, they said.", "Grace Under Fire is a show.",
                               "Mark the date: Summer Sale starts Monday.", "Happy New Year!"])
        elif choice == 13:
            # Street-like phrases without a house number, and streets in prose.
            text = rng.choice([f"Take {f.street_name()} towards the river.",
                               "Main Street and Park Avenue are closed.",
                               f"Turn left on {f.street_name()}.", "我们沿着中山路走到人民广场。",
                               "北京市的道路很宽。"])
        elif choice == 14:
            # Company names built from surnames.
            text = f"{f.company()} filed its report; {Faker('zh_CN').company()}发布了公告。"
        else:
            text = f"Chapter {rng.randint(1, 20)} covers {rng.randint(2, 99)} pages of notes."
        out.append(("neg", (text, [])))
    return out


rows = positives()
rows += negatives(Faker("en_US"))
# Some sentences hold two values.
mixed = []
for _ in range(N):
    a, b = rng.sample(rows, 2)
    mixed.append(("mixed", join(a[1], b[1])))
rows += mixed
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    for loc, (text, labels) in rows:
        fh.write(json.dumps({"text": text, "locale": loc, "labels": labels}, ensure_ascii=False) + "\n")
