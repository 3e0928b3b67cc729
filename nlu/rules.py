"""The deterministic first NLU stage: patterns for the ways people ask, said or typed.

It answers in microseconds and knows when it is unsure: a sentence it cannot read
with confidence gets intent "unknown" or a low confidence, never a guess.
"""

import re
from decimal import Decimal
from functools import lru_cache

from nlu.numbers import normalise_numbers
from nlu.result import NLUResult
from nlu.spending import asks_spending, category_of, period_of

SOURCE = "rules"

# Confidence for each reading. Values follow the contract's examples.
BALANCE_CONFIDENCE = 0.95
SEND_CONFIDENCE = 0.92
SEND_UNCLEAR_AMOUNT_CONFIDENCE = 0.5
HISTORY_CONFIDENCE = 0.9
HISTORY_COUNT_CONFIDENCE = 0.92
SPENDING_CONFIDENCE = 0.9
PROBLEM_CONFIDENCE = 0.9
# A question about how banking works, or a "send" that is no payment: no action, said surely.
NOT_A_REQUEST_CONFIDENCE = 0.9
UNSURE_CONFIDENCE = 0.45
NOTHING_CONFIDENCE = 0.2

DIALOGUE_ACT_CONFIDENCE = 0.95
# Whole utterances that are a dialogue act, compared after lower-casing and dropping
# punctuation. Longer or mixed sentences are left to the later stages.
DIALOGUE_ACTS = {
    phrase: act
    for act, phrases in {
        "affirm": "yes|yeah|yep|yup|sure|ok|okay|correct|confirm|go ahead|yes please|do it"
        "|that's right|thats right|proceed|yes go ahead|ok go ahead",
        "deny": "no|nope|nah|no thanks|wrong|incorrect|that's wrong|not right",
        "cancel": "cancel|stop|never mind|nevermind|forget it|abort|cancel that|cancel it"
        "|cancel the transfer",
        "greet": "hi|hello|hey|good morning|good afternoon|good evening|namaste|hi there"
        "|hello there|hey there",
        "goodbye": "bye|goodbye|good bye|bye bye|see you|that's all|thats all|thank you bye",
        "help": "help|help me|what can you do|what can i say|what can i ask",
        "repeat": "repeat|repeat that|say that again|say it again|say again|come again|pardon"
        "|what did you say|sorry what did you say|can you repeat that|please repeat|once more",
    }.items()
    for phrase in phrases.split("|")
}

FILLERS = re.compile(
    r"\b(?:um+|uh+|erm+|hmm+|ah|please|pls|plz|kindly|could you|can you|would you|will you"
    r"|hey|hi|hello|ok|okay|just|for me|right now|now)\b"
)
NEGATION = re.compile(r"\b(?:don't|dont|do not|never|not|cancel|stop)\b")
REFUSAL = re.compile(r"^(?:no|nope|nah|wait)\b|\b(?:forget (?:it|about it)|never ?mind|hold on)\b")
NUMBER = r"-?\d+(?:\.\d+)?"

SEND_VERB = re.compile(
    r"^(?:(?:so|yes|yeah|and|then|also|i want to|i wanna|i would like to|i'd like to|i need to"
    r"|let me|go ahead and|help me)\s+)*(?P<verb>send|transfer|pay|give|wire|remit)\b"
)
# "Ravi ko 500 bhejo", "paisa bhejna hai mom ko": a transfer said in Hinglish, the
# receiver marked by "ko".
HINGLISH_SEND = re.compile(
    r"\b(?P<name>[a-z]+) ko\b.*\bbhej(?:o|do|de|na|dena|iye|en|ni)?\b"
    r"|\bbhej(?:o|do|de|na|dena|iye|en|ni)?\b.*\b(?P<after>[a-z]+) ko\b"
)
# Verbs that mean moving money by themselves; "send" and "give" need an amount or money word.
MONEY_VERBS = frozenset({"transfer", "pay", "wire", "remit"})
MONEY_WORDS = re.compile(r"\b(?:money|funds|cash|rupees?|rs|bucks|payment)\b|₹")
NOT_A_TRANSFER = re.compile(
    r"\b(?:bills?|invoice|texts?|messages?|sms|whatsapp|location|e-?mails?|uber|fact|joke|recipe"
    r"|wishes|greetings|letter|parcel|documents?|photos?|pictures?|reminders?|invites?|link"
    r"|files?|resume|cv|notes?|voice notes?|attention|tips|advice|ideas?|suggestions?|feedback"
    r"|respects?|compliments?|regards|love|condolences|visit|calls?|report|form|details"
    # Payees that are not contacts: bills, dues and top-ups this assistant does not pay.
    r"|emis?|loan|premiums?|fees?|recharge|dth|fastag|electricity|insurance|tax(?:es)?|lic"
    r"|subscriptions?|instal?ments?|tickets?|birthday)\b"
)
BALANCE = re.compile(
    r"\b(?:balance|bal|blance|balence|balanse|ballance)\b"
    r"|\bkitn[ae] (?:paisa|paise|rupaye|rupees|balance)\b"
    r"|\bhow much (?:money )?(?:do i have|have i got|is (?:left|remaining)|money is there"
    r"|is (?:there )?in my (?:\w+ )?account)|\bmoney do i have\b"
    r"|\bwhat(?:'s| is) in my (?:bank )?account\b"
    r"|\b(?:am i|is my account) (?:in the negative|in (?:the )?red|overdrawn)\b"
)
# Whether the money is there for something: a balance check by another name, even for a
# bill ("do I have enough for the electricity bill?").
AFFORD = re.compile(r"\bcan i afford\b|\b(?:do i have|have i got|is there|will i have) enough\b")
NOT_MONEY = re.compile(
    r"\b(?:rewards?|points|miles|time|data|storage|leaves?|borrow|loan|emi|mortgage|owe)\b"
)
NOT_BALANCE = re.compile(
    r"\b(?:rewards?|points|bills?|loan|credit card|to pay|owe|borrow|mortgage|miles)\b"
)
# Things with a balance that is not this bank account's.
OTHER_BALANCES = (
    r"(?:pf|ppf|epf|nps|fastag|wallet|paytm|data|gift card|leaves?|sim|prepaid|metro card"
    r"|mobile|phone|talk ?time|loyalty card)"
)
# The words of a banking request in another sense: a body's or a life's balance, a
# company's balance sheet, a browser's history, a statement of purpose. Surely no request.
OTHER_SENSE = re.compile(
    r"\b(?:to|how to|i|you|should|must|always|learn to) balance\b"
    r"|\blos(?:e|t|ing) (?:my |your )?balance\b"
    r"|\b(?:good|great|perfect|nice|right|fine|healthy|fair) balance\b"
    r"|\bbalance (?:on|of) (?:my |the )?(?:tyres?|tires?|wheels?|bike|car)\b"
    r"|\bstatement (?:the|that|made by) (?:\w+ )?(?:minister|pm|president|government|ceo|police)\b"
    r"|\baccount of (?:what|how|the (?:events?|incident))\b"
    # Time spent, not money: "I spent the whole weekend sleeping".
    r"|^(?!.*\b(?:how much|what did i|what have i)\b).*\bspen[dt] (?:the |my |a )?"
    r"(?:whole |entire )?(?:day|weekend|night|evening|morning|hours?"
    r"|summer|holidays?|vacation|life|afternoon)\b"
    r"|\btransferred to (?:a |the )?(?:new |another )?(?:college|school|city|branch|team|office"
    r"|department|job|university)\b"
    r"|\bbalance (?:a|an|the|on(?! my)|sheet|certificate|into)\b"
    r"|\b(?:work[- ]life|out of|colou?rs?|diet) balance\b|\bbalance is off\b"
    r"|\b(?:browser|call|watch|youtube|search|medical|browsing|chat|order|credit) history\b"
    r"|\bhistory (?:homework|of the|class|lesson|exam|of india|of my family)\b"
    r"|\bstatement of (?:purpose|account format)\b|\b(?:opening|closing|personal) statement\b"
    r"|\b(?:make|made|makes|issue|issued|release|released|gave|give|record|recorded) a statement\b"
    # The balance of something that is not this bank account.
    rf"|\b{OTHER_BALANCES}(?: \w+)? balance\b|\bin my (?:pf|ppf|epf|nps) account\b"
    rf"|\bbalance (?:of|in|on) (?:my |the )?(?:\w+ )?{OTHER_BALANCES}\b"
    rf"|\b{OTHER_BALANCES} (?:mein|me|main)\b"
)
# Someone else's money ("my dad's balance", "her transactions", "how much did my son
# spend"): not this user's to be read out.
SOMEONE_ELSE = re.compile(
    r"\b(?!(?:today|yesterday|tomorrow|month|week|year|quarter|it|that|what|there|here|let"
    r"|who|where|how|one)'s)\w+'s (?:\w+ ){0,2}"
    r"(?:accounts?|balance|transactions?|statements?|spending|money|cash|history|net worth"
    r"|salary|income|wealth)\b"
    r"|\b(?:his|her|their) (?:\w+ )?(?:accounts?|balance|transactions?|statements?|spending)\b"
    r"|\b(?:how much|what) (?:money )?(?:did|does|do|has|have) (?!i\b|we\b)"
    r"(?:my |the |a |an |our )?"
    r"(?:\w+ ){1,2}(?:spend|spent|earn|earned|have|send|sent)\b"
    r"|\b(?:can|could|does|will) (?:my )?(?:\w+ ){0,2}(?:check|see) (?:his|her|their)\b"
    r"|\bmy (?:wife|husband|son|daughter|kids?|children|brother|sister|mom|mother|dad|father"
    r"|friend|boss|roommate|partner|parents) (?:spends|spent|earns|earned|keeps spending)\b"
)
HISTORY = re.compile(
    r"\btransactions?\b|\btrans?ct?ions?\b|\bstatements?\b|\bhistory\b|\bhistroy\b|\bpassbook\b"
    r"|\brecent (?:payments|activity|transfers|spending|credits?|debits?)\b"
    # Money in or out, asked after: what the statement shows.
    r"|\b(?:been|was|got|get) (?:credited|debited)\b|\bcredits? (?:to|in|into) my\b"
    r"|\b(?:last|latest|most recent|recent) (?:amount|credit|debit|deposit|payment|transfer)s?\b"
    r"|\bdid i (?:receive|get) (?:any )?(?:money|payments?|funds)\b"
    r"|\bwhen did i (?:last )?(?:pay|send)"
    r"|\b(?:list|show)\b.* (?:money|everything|all|what) i (?:sent|paid|received|got)\b"
    r"|\b(?:credits|debits|came in|went out)\b"
    # A past payment asked after: "did I pay Mike already", "was my transfer to John
    # successful", "salary aaya kya".
    r"|\bdid i (?:already )?(?:pay|send)\b"
    r"|\b(?:was|is|has|did) (?:my |the |\w+'s )?(?:transfer|payment)s? (?:to \w+ )?"
    r"(?:(?:been )?(?:successful|succeed|go through|gone through|went through|arrived|reached|done"
    r"|complete|completed))"
    r"|\bdid (?:the |my )?(?:\d+ |money )?(?:i sent|i paid|i transferred) (?:to )?\w+ "
    r"(?:reach|arrive|go through)"
    r"|\b(?:in|come|arrived|reached|credited) yet\b"
    r"|\baa(?:ya|yi|ye|i) kya\b|\bkya \w+ aa(?:ya|yi|ye)\b"
    r"|\b(?:any|was there a|were there) (?:\w+ )?deposits?\b"
)
NOT_HISTORY = re.compile(
    r"\b(?:fees?|declined|unauthori[sz]ed|block|fraud|dispute|limit|true|false|reverse|refund"
    r"|twice|undo|wrong|mistake|duplicate|incorrect|recogni[sz]e|charged|why|problem|exam"
    r"|complaint|complain|disputed|stuck)\b"
    r"|\bhow (?:do|can|does|long|many)\b|\bcan i use\b"
    # Settings about statements and alerts, not a read-out of them.
    r"|\b(?:frequency|alerts?|sms|notifications?|disable|enable|turn (?:off|on)|news|format"
    r"|e-?mail address|charges)\b"
    r"|\btransaction costs?\b"
    r"|\b(?:new|naya|nayi|another|fresh) (?:passbook|cheque ?book|chequebook|atm card"
    r"|debit card|card)\b"
)
# A complaint or dispute about a payment: the fraud report and a human, never a read-out.
PROBLEM = re.compile(
    r"\b(?:don't|do not|didn't|did not|never) (?:recogni[sz]ed?|make|made|authori[sz]ed?)\b"
    r"|\b(?:wasn't|weren't|was not|were not|not) (?:me|by me|mine)\b|\bsto(?:le|len)\b|\bhacked\b"
    r"|\bunknown (?:transactions?|payments?|charges?|debits?)\b|\bgalat\b"
    r"|\bwithout (?:my )?(?:permission|consent|knowledge|approval)\b"
    r"|\bcharged\b.*\bdeclined\b|\bdeclined\b.*\b(?:charged|deducted|debited)\b"
    r"|\b(?:charged|debited|billed|paid) (?:me )?twice\b|\bdouble (?:charged|debited)\b"
    r"|\b(?:reverse|dispute|refund)\b|\bunauthori[sz]ed\b|\bfraud\w*|\bwrong(?:ly)?\b"
    r"|\b(?:isn't|aren't) mine\b|\b(?:unusual|strange|unfamiliar|suspicious|weird"
    r"|duplicated?|revert|reversed|mistakes?|mistakenly)\b"
    r"|\b(?:multiple|many|several|two|2) times\b"
    r"|\bsomeone else\b|\b(?:cut|deducted|taken) twice\b|\b(?:doesn't|does not|don't) match\b"
    r"|\b(?:didn't|did not) do (?:that|this|it)\b|\bfailed\b|\b(?:want|get) (?:it|my money) back\b"
    r"|\b(?:didn't|did not|never|not) (?:give|get|receive|recieve|reach|arrive|received|recieved"
    r"|reached|arrived|credited)\b|\bovercharged\b|\bstuck\b|\bcomplaint\b|\bcomplain\b"
    r"|\b(?:hasn't|has not|haven't|have not|wasn't|was not) (?:been )?(?:updated|added|credited)\b"
    r"|\bdouble (?:debit|deduction|charge)s?\b|\b(?:do|2) baar\b|\bscam\w*"
    r"|\bmoney is gone\b|\bnever got it\b|\bundo\b"
)
PAYMENT_WORDS = re.compile(
    r"\b(?:transactions?|payments?|charges?|charged|debits?|debited|withdrawals?|purchases?"
    r"|direct debits?|transfers?|transferred|deductions?|deducted|money|amount|sent|went|taken"
    r"|took|paid|rupees?|kat gaya|kat gaye|kata|paisa|paise)\b"
    # Said of the account, fraud is a problem with no payment named.
    r"|\b(?:fraud|scam\w*|hacked)\b.*\baccount\b|\baccount\b.*\b(?:fraud|hacked)\b"
)
# A question about how banking works ("what is a zero balance account?", "is it safe to
# send money online?"), not a request about this user's money: the rules say so surely,
# so that no later stage reads a balance or a transfer into it.
GENERAL_QUESTION = re.compile(
    r"\bwhat (?:does|do) (?:\w+ ){1,6}mean\b|\bmeaning of\b|\bexplain\b|\bdefinition\b"
    r"|\bdifference between\b|\bwhat(?:'s| is| are) (?:exactly |actually )?(?:a|an)\b"
    r"|\bin general\b|\bis it (?:safe|legal)\b|\bwhich is better\b|\bhypothetically\b"
    r"|\bwhat are the (?:\w+ )?(?:ways|rules|steps|options|documents)\b|\bideas for\b"
    r"|\bwhat (?:usually )?happens (?:if|when)\b|\bhow is\b.*\bcalculated\b"
    r"|\bhow do (?:scammers|people|banks|they)\b|\bhow many days does\b|\bhow can i tell if\b"
    r"|\b(?:are there|is there a|any) (?:\w+ )?(?:fees?|charges?)\b|\bfees? for\b"
    r"|\bhow long does\b|\bwhat (?:happens|would happen|will happen) if\b|\bsome ?day\b"
    # News and reading, not a request: "I read that UPI transactions doubled".
    r"|\b(?:i was reading|i read|read that|article|according to)\b"
    r"|\bhistory of (?:the |a |an )?(?:indian|india|rbi|reserve|banks?|banking|money|currency)"
    r"|\b(?<!my )(?:minimum|zero|average|average monthly) balance\b"
    r"|\bbalance of payments\b|\binsufficient balance\b|\bconvert\b|\bexchange rates?\b"
    r"|\bcharges? for\b"
    r"|\bwhat exactly is\b|\baverage\b.*\b(?:indian|person|family|household|people)\b"
    r"|\bpeople (?:usually|generally)\b|\bis (?:that|this|it) allowed\b"
    r"|\bwhere (?:do|can) i (?:go )?to\b"
    r"|\bhow (?:do|can|should) (?:i|you|we) (?:open|read|get a|apply|track)\b"
    r"|\b(?:abroad|overseas|internationally|foreign)\b"
)
# How sending works, asked without an amount ("how do I send money to someone?").
HOW_TO_SEND = re.compile(r"\bhow (?:do|can|should|would) (?:i|you|we) (?:send|transfer|pay)\b")
# Money owed or shared out, not sent: "how much do I owe Rahul", "split the fare".
OWED = re.compile(r"\bowes?\b|\bowed\b|\bsplit\b|\bmy share\b|\blent\b|\blend\b")
# Money coming to the user. Asked after, it is what the statement shows ("did Priya pay me
# back", "any money come in from Rahul"); asked for, it is a request to someone else this
# assistant does not make ("ask Rahul to send me 500", "request 2000 from Priya").
INCOMING = re.compile(
    r"\b(?:sent|send|sends|pay|paid|pays|transferred|transfer|gave|bheje|bheja) me\b"
    r"|\bgive me\b(?! (?:my|the|a|an|all|last|details|list)\b)"
    r"|\b(?:came|come|comes|coming|went|gone|go) (?:in|into|out|through)\b|\bincoming\b"
    r"|\bin and out\b|\b(?:reached|arrived|come to|came to|hit) my (?:\w+ )?account\b"
    r"|\bwhat did i (?:receive|get)\b|\b(?:receive|received|recieved|got) (?:from|any)\b"
    r"|\bmoney from\b|\bfrom \w+ (?:come|came|arrive|arrived|reach|reached)\b"
    r"|\b\w+'s (?:money|payment|transfer) (?:come|came|arrive|arrived|reach|reached)\b"
)
ASKED_OF_OTHERS = re.compile(
    r"^(?:ask|request|remind|tell|get|collect|generate|create|make)\b|\brequest\b"
    r"|\bpayment link\b|\b(?:ask|remind|tell) \w+ to\b"
)
# Money the user would get from someone: "collect 500 from John", "send a payment request
# to Mike": no transfer of the user's.
COLLECT = re.compile(
    r"\b(?:collect|request|claim|recover|take) (?:\w+ ){0,3}from\b|\bpayment request\b"
    r"|\brequest (?:for )?(?:money|payment|funds|\d)"
)
# Money coming in, said as news, not asked after ("Mike just sent me 200 for the movie"):
# a question or a request has one of these words (or a question mark).
ASKS = re.compile(
    r"\b(?:did|do|does|has|have|had|is|was|were|are|any|when|what|which|how|who|whether|if"
    r"|whats|check|show|tell|list|see|let me know|go through|walk me through|kya|yet)\b"
)
# The same, only when the sentence says nothing of the speaker ("how to check a balance",
# not "how to check my balance", which asks for it).
IMPERSONAL_QUESTION = re.compile(r"\bhow to\b|\bsuppose\b|\bwhat if\b|\bshould one\b")
# Moving money between the user's own accounts, which the assistant does not do.
OWN_ACCOUNTS = re.compile(
    r"\b(?:between|across) (?:my |our )?(?:own |two |both )?(?:\w+ )?accounts\b"
    r"|\b(?:from|to|into|out of|in) (?:my |our |the )?(?:own |other )?(?:savings|checking|checkings"
    r"|chequing|current|salary|joint|fixed deposit|fd|rd|recurring deposit|ppf|other|own|second"
    r"|personal|business)(?: a/?c| account)?\b"
    r"|\bself[ -]?transfer\b|\bboth (?:are |of them are )?mine\b|\bin my (?:own )?name\b"
    r"|\bto myself\b|\b(?:old|new|another|dusre|doosre) account\b|\b(?:also|is|are) mine\b"
    r"|\b(?:to|into|from) my (?:sbi|hdfc|icici|axis|kotak|pnb|canara|idfc|indusind|yes bank"
    r"|nre|nro|demat|trading|upi|post office|other bank)(?: bank)?(?: a/?c| account)?\b"
)
BANKING_WORDS = re.compile(r"\b(?:money|account|bank|rupees?|rs|payment|funds|cash)\b")
# Any word that shows a sentence is about money; see `about_own_money`.
BANKING_EVIDENCE = re.compile(
    r"\b(?:money|accounts?|bank|rupees?|rs|bucks|payments?|funds|cash|balance|transactions?"
    r"|statement|passbook|spen[dt]|spending|expenses?|expenditures?|paid|pay|send|sent|transfer\w*"
    r"|owe|broke|left|savings|checking|purchases?|bought|afford|overdrawn|finances?|outgoings"
    r"|debits?|credits?)\b|₹"
)

# Words by which a sentence says it is about the speaker's own money.
SELF = re.compile(r"\b(?:my|me|i|i'm|i've|i'd|i'll|im|mine|our|us|we|myself)\b")
# A request said as a command: "send 500 to Ravi", "show the last five payments".
REQUEST_START = re.compile(
    r"(?:send|transfer|pay|give|wire|remit|move|make|initiate|show|list|tell|check|get|read"
    r"|display|fetch|total|current|how much)\b"
)

CURRENCY_BEFORE = re.compile(rf"(?:₹|\brs\.?|\binr)\s*(?P<n>{NUMBER})")
CURRENCY_AFTER = re.compile(
    rf"(?<![\w.])(?P<n>{NUMBER}) ?(?:rupees?|rs\b\.?|inr\b|bucks)"
    rf"(?: (?:and )?(?P<paise>\d+) (?:paise|paisa))?"
)
PAISE_ONLY = re.compile(rf"(?<![\w.])(?P<n>{NUMBER}) (?:paise|paisa)\b")
BARE_NUMBER = re.compile(rf"(?<![\w.₹]){NUMBER}(?![\w.])")

NAME = r"[a-z][a-z'-]*"
NOT_NAMES = frozenset(
    (
        "my the a an some money rupees rupee rs inr bucks him her them it account amount "
        "from for and with via using today tomorrow immediately asap quickly back please "
        "make do get pay send transfer check see know buy be have"
    ).split()
)
RECEIVER_AFTER_TO = re.compile(rf"\bto (?:my )?(?P<name>{NAME}(?: {NAME})?)")
RECEIVER_AFTER_VERB = re.compile(rf"^ ?(?:my )?(?P<name>{NAME}(?: {NAME})?) (?:rs |₹)?\d")
# An amount sent straight to a name ("send 600 to Mike"): a transfer, whatever else the
# sentence mentions ("split the dinner bill, send 600 to Mike").
DIRECT_TRANSFER = re.compile(
    rf"\b(?:send|transfer|pay|give|wire) (?:rs |₹ ?)?{NUMBER} (?:rupees? |rs |bucks )?to {NAME}"
)

COUNT_BEFORE = re.compile(
    r"\b(?:last|previous|past|recent|latest|most recent|top|first)\s+(?P<n>\d+)\b"
)
COUNT_AFTER = re.compile(r"\b(?P<n>\d+)\s+(?:\w+\s+){0,2}?(?:transactions|payments|entries)\b")
SINGLE_LATEST = re.compile(r"\b(?:last|latest|most recent|previous) (?:transaction|payment)\b")


# "didnt", "doesnt", typed without the apostrophe the patterns expect.
UNMARKED_NOT = re.compile(r"\b(did|does|do|is|are|was|were|ca|wo|has|have|had)nt\b")


# A transfer said with its noun ("do one transfer of 500 to Jane", "make a payment to
# Mike"): read as its verb ("transfer 500 to Jane", "pay Mike").
NOUN_TRANSFER = re.compile(
    r"\b(?:do|make|initiate|process|new)\s+(?:(?:one|1|a|an|the)\s+)?(?:money\s+)?"
    r"(?:(?P<transfer>transfer)|payment)(?:\s+of)?\b"
)
# Quotes around words ("what does 'available balance' mean"), not apostrophes in them.
QUOTES = re.compile(r"(?<!\w)'|'(?!\w)")


# One utterance is read by several stages and checks in a turn; normalise it once.
@lru_cache(maxsize=1024)
def normalise(text: str) -> str:
    """Lower-case, numbers as digits, fillers and stray punctuation gone, single spaces."""
    text = normalise_numbers(text.lower().replace("’", "'"))
    text = UNMARKED_NOT.sub(r"\1n't", QUOTES.sub(" ", text))
    text = NOUN_TRANSFER.sub(lambda m: "transfer" if m["transfer"] else "pay", text)
    text = re.sub(r"[^\w\s.₹'-]|(?<!\d)\.|\.(?!\d)", " ", text)
    text = FILLERS.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def parse(text: str) -> NLUResult:
    """Read one utterance. Never raises; an unreadable sentence is 'unknown'."""
    act = DIALOGUE_ACTS.get(" ".join(re.sub(r"[^\w\s']", " ", text.lower()).split()))
    if act:
        return NLUResult(intent=act, confidence=DIALOGUE_ACT_CONFIDENCE, source=SOURCE)
    words = normalise(text)
    mine = bool(SELF.search(words))
    general = bool(GENERAL_QUESTION.search(words) or OTHER_SENSE.search(words)) or (
        bool(IMPERSONAL_QUESTION.search(words)) and not mine
    )
    if PROBLEM.search(words) and PAYMENT_WORDS.search(words) and (mine or not general):
        return NLUResult(intent="report_problem", confidence=PROBLEM_CONFIDENCE, source=SOURCE)
    send = SEND_VERB.search(words)
    wants_balance = bool(BALANCE.search(words)) and not NOT_BALANCE.search(words)
    wants_balance |= bool(AFFORD.search(words)) and not NOT_MONEY.search(words)
    incoming = INCOMING.search(words) and not OWN_ACCOUNTS.search(words) and not wants_balance
    if incoming and not NOT_HISTORY.search(words):
        asked = bool(ASKS.search(words) or REQUEST_START.match(words)) or "?" in text
        no_request = bool(ASKED_OF_OTHERS.search(words)) or not asked
        return NLUResult(
            intent="unknown" if no_request else "transaction_history",
            confidence=NOT_A_REQUEST_CONFIDENCE if no_request else HISTORY_CONFIDENCE,
            source=SOURCE,
        )
    amount = _amount(words)
    general |= (bool(HOW_TO_SEND.search(words)) or bool(OWED.search(words))) and (
        amount is None or not send
    )
    general |= bool(COLLECT.search(words))
    not_a_payment = bool(send and NOT_A_TRANSFER.search(words)) and amount is None
    someone_elses = bool(SOMEONE_ELSE.search(words)) and not send and amount is None
    if general or not_a_payment or someone_elses:
        return NLUResult(intent="unknown", confidence=NOT_A_REQUEST_CONFIDENCE, source=SOURCE)
    if send and not _moves_money(words, send["verb"]):
        send = None
    if send and send["verb"] == "give" and HISTORY.search(words) and _count(words) is not None:
        send = None  # "give me my last 2 transactions"
    wants_history = bool(HISTORY.search(words)) and not NOT_HISTORY.search(words)

    if NEGATION.search(words):
        return _unsure(words)
    if asks_spending(words) and not send:
        category, period = spending_slots(text)
        return NLUResult(
            intent="check_spending",
            category=category,
            period=period,
            confidence=SPENDING_CONFIDENCE,
            source=SOURCE,
        )
    if send and not wants_balance and not (wants_history and amount is None):
        return _send(words, send.end())
    hinglish = HINGLISH_SEND.search(words)
    if hinglish and not (wants_balance or wants_history):
        receiver = _trim_name(hinglish["name"] or hinglish["after"])
        return NLUResult(
            intent="send_money",
            amount=amount,
            receiver=receiver,
            confidence=SEND_CONFIDENCE,
            source=SOURCE,
        )
    if wants_balance and not wants_history and not send:
        return NLUResult(intent="check_balance", confidence=BALANCE_CONFIDENCE, source=SOURCE)
    if wants_history and not wants_balance:
        count = _count(words)
        confidence = HISTORY_CONFIDENCE if count is None else HISTORY_COUNT_CONFIDENCE
        return NLUResult(
            intent="transaction_history",
            transaction_count=count,
            confidence=confidence,
            source=SOURCE,
        )
    return _unsure(words)


def about_own_money(text: str) -> bool:
    """Whether the sentence is about this user's own money: it has a word about money and
    says whose (I, my, me) or is a request said short or as a command ("balance please",
    "send 500 to Ravi"). "What is a minimum balance?" is not; learned stages need more
    to read a banking request into such a sentence."""
    words = normalise(text)
    if not BANKING_EVIDENCE.search(words):
        return False
    return bool(SELF.search(words) or REQUEST_START.match(words)) or len(words.split()) <= 4


def begins_a_transfer(text: str) -> bool:
    """Whether the words open a transfer and name no amount yet ("send Mike", "can you pay
    Ravi"): the rules read no request in them, but a speaker who stops there has more to say."""
    words = normalise(text)
    opening = SEND_VERB.search(words)
    return bool(opening) and _amount(words) is None and not NOT_A_TRANSFER.search(words)


def between_own_accounts(text: str) -> bool:
    """Whether a transfer is between the user's own accounts ("from savings to checking"),
    which the assistant answers with what it can do instead."""
    return bool(OWN_ACCOUNTS.search(normalise(text)))


def negates(text: str) -> bool:
    """Whether the sentence says no, stop or don't: a conversation then moves no money."""
    words = normalise(text)
    return bool(NEGATION.search(words) or REFUSAL.search(words))


def slots(text: str) -> tuple[Decimal | None, str | None, int | None]:
    """Amount, receiver and count as this stage reads them, whatever the intent.

    Later stages decide the intent but take numbers from here, so that amounts are read
    by one piece of code.
    """
    words = normalise(text)
    send = SEND_VERB.search(words)
    rest = words[send.end() :] if send else words
    return _amount(rest), _receiver(rest), _count(words)


def spending_slots(text: str) -> tuple[str | None, str | None]:
    """Category and period of a spending question as this stage reads them; later stages
    that decide the intent take them from here."""
    words = normalise(text)
    return category_of(words), period_of(words)


def _moves_money(words: str, verb: str) -> bool:
    """'send a text to joe' and 'pay my bill' are not transfers; 'send 500 to joe' is."""
    if NOT_A_TRANSFER.search(words):
        return bool(DIRECT_TRANSFER.search(words))
    if verb in MONEY_VERBS or MONEY_WORDS.search(words) or BARE_NUMBER.search(words):
        return True
    return verb == "send" and bool(RECEIVER_AFTER_TO.search(words))


def _unsure(words: str) -> NLUResult:
    confidence = UNSURE_CONFIDENCE if BANKING_WORDS.search(words) else NOTHING_CONFIDENCE
    return NLUResult(intent="unknown", confidence=confidence, source=SOURCE)


def _send(words: str, verb_end: int) -> NLUResult:
    rest = words[verb_end:]
    amount = _amount(rest)
    clear = amount is not None or not BARE_NUMBER.search(rest)
    return NLUResult(
        intent="send_money",
        amount=amount,
        receiver=_receiver(rest),
        confidence=SEND_CONFIDENCE if clear else SEND_UNCLEAR_AMOUNT_CONFIDENCE,
        source=SOURCE,
    )


def _amount(words: str) -> Decimal | None:
    """The one amount in the words: marked as rupees or paise, else the only number."""
    marked = [_rupees(m) for m in CURRENCY_BEFORE.finditer(words)]
    marked += [_rupees(m, m["paise"]) for m in CURRENCY_AFTER.finditer(words)]
    marked += [Decimal(m["n"]) / 100 for m in PAISE_ONLY.finditer(words) if _paise_alone(m)]
    if len(marked) == 1:
        return marked[0]
    if marked:
        return None
    bare = BARE_NUMBER.findall(words)
    return Decimal(bare[0]) if len(bare) == 1 else None


def _paise_alone(match: re.Match[str]) -> bool:
    """'50 paise' on its own, not the tail of '500 rupees and 50 paise'."""
    return not re.search(r"(?:rupees?|rs|inr) (?:and )?$", match.string[: match.start()])


def _rupees(match: re.Match[str], paise: str | None = None) -> Decimal:
    value = Decimal(match["n"])
    return value + Decimal(paise) / 100 if paise else value


def _receiver(words: str) -> str | None:
    for pattern in (RECEIVER_AFTER_TO, RECEIVER_AFTER_VERB):
        match = pattern.search(words)
        if match:
            name = _trim_name(match["name"])
            if name:
                return name
    return None


def _trim_name(candidate: str) -> str | None:
    """Keep the name words, stopping at the first word that is not part of a name."""
    kept: list[str] = []
    for word in candidate.split():
        if word in NOT_NAMES:
            break
        kept.append(word)
    return " ".join(kept) or None


def _count(words: str) -> int | None:
    match = COUNT_BEFORE.search(words) or COUNT_AFTER.search(words)
    if match:
        count = int(match["n"])
        return count if count > 0 else None
    return 1 if SINGLE_LATEST.search(words) else None
