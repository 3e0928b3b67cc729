// The page a reply names, drawn from its `data`: a balance card, the statement list, the
// transfer being confirmed, spending by category. DOM only (no innerHTML of server text),
// so that nothing the server says is read as markup, and nothing inline (the CSP is 'self').

const money = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR" });
const PERIODS = {
  today: "today",
  yesterday: "yesterday",
  this_week: "this week",
  last_week: "last week",
  this_month: "this month",
  last_month: "last month",
  this_year: "this year",
  last_year: "last year",
};
const WAITING = {
  receiver: "Waiting for you to say whom to pay.",
  receiver_confirmation: "Waiting for you to confirm whom you mean.",
  amount: "Waiting for the amount.",
  confirmation: "Waiting for an explicit yes before it goes on.",
  password: "Waiting for your password.",
};

export function rupees(value) {
  return money.format(Number(value));
}

/** An element with its text (never parsed as HTML) and classes. */
export function el(tag, text = "", className = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function facts(rows) {
  const list = el("dl", "", "facts");
  for (const [term, value] of rows) {
    list.append(el("dt", term), el("dd", value));
  }
  return list;
}

/** What a reply shows: { kind, heading, body } or null when it shows nothing new. */
export function cardFor(event, previousTransfer) {
  const data = event.data || {};
  if (Array.isArray(data.spending_by_category)) return spendingCard(data);
  if (Array.isArray(data.transactions)) return statementCard(data.transactions);
  if (event.page === "home" && data.balance !== undefined) return balanceCard(data.balance);
  if (data.transfer || data.success === true || data.awaiting) {
    return transferCard(data, data.transfer || previousTransfer);
  }
  if (previousTransfer && data.success === false) return transferCard(data, previousTransfer);
  return null;
}

function balanceCard(balance) {
  const body = el("div", "", "balance");
  body.append(el("p", "Current account", "label"), el("p", rupees(balance), "amount"));
  return { kind: "balance", heading: "Balance", body };
}

function statementCard(transactions) {
  const body = el("div");
  if (!transactions.length) {
    body.append(el("p", "No transactions yet."));
    return { kind: "statement", heading: "Statement", body };
  }
  const table = el("table", "", "statement");
  const head = table.createTHead().insertRow();
  for (const name of ["Date", "Counterparty", "Category", "Amount"]) {
    const cell = el("th", name);
    cell.scope = "col";
    head.append(cell);
  }
  const rows = table.createTBody();
  for (const entry of transactions) {
    const row = rows.insertRow();
    const credit = entry.type === "credit";
    const amount = `${credit ? "+" : "−"}${rupees(entry.amount)}`;
    row.append(
      el("td", String(entry.timestamp || "").slice(0, 10)),
      el("td", entry.counterparty || entry.description || ""),
      el("td", entry.category || "—"),
      el("td", amount, credit ? "credit" : "debit"),
    );
  }
  body.append(table);
  return { kind: "statement", heading: "Statement", body };
}

function transferCard(data, transfer) {
  const details = transfer || {};
  const body = el("div", "", "transfer");
  body.append(
    facts([
      ["To", details.to || "(not said yet)"],
      ["Amount", details.amount == null ? "(not said yet)" : rupees(details.amount)],
    ]),
  );
  let state;
  if (data.success === true) {
    state = data.balance === undefined ? "Sent." : `Sent. Your balance is ${rupees(data.balance)}.`;
  } else if (data.awaiting) {
    state = WAITING[data.awaiting] || "Waiting for you.";
  } else {
    state = "Not sent.";
  }
  body.append(el("p", state, `state ${data.success === true ? "done" : ""}`));
  if (data.awaiting === "confirmation" && details.unusual && details.unusual.length) {
    const why = el("ul", "", "reasons");
    for (const reason of details.unusual) why.append(el("li", `It is ${reason}.`));
    body.append(el("p", "It looks unusual:"), why);
  }
  return { kind: "transfer", heading: "Transfer", body, transfer: details };
}

function spendingCard(data) {
  const period = PERIODS[data.period] || String(data.period || "").replaceAll("_", " ");
  const heading = `Spending ${period}${data.category ? `: ${data.category}` : ""}`;
  const body = el("div", "", "spending");
  body.append(el("p", `Total ${rupees(data.total || 0)}`, "total"));
  const items = data.spending_by_category;
  if (!items.length) {
    body.append(el("p", "Nothing spent in this period."));
    return { kind: "spending", heading, body };
  }
  const largest = Math.max(...items.map((item) => Number(item.value)), 1);
  const chart = el("ul", "", "bars");
  chart.setAttribute("aria-label", `${heading}, by category`);
  for (const item of items) {
    const row = el("li", "", "bar-row");
    const bar = el("span", "", "bar");
    bar.setAttribute("aria-hidden", "true");
    // CSSOM, which a CSP of 'self' allows (a style attribute in markup it would not).
    bar.style.width = `${Math.max(2, (100 * Number(item.value)) / largest)}%`;
    row.append(el("span", item.name, "bar-name"), bar, el("span", rupees(item.value), "bar-value"));
    chart.append(row);
  }
  body.append(chart);
  return { kind: "spending", heading, body };
}
