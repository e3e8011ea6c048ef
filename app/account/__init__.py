"""The wallet's use cases: one network and account (service), the GUI's session over it with
quotes, lock state and history (session, history, sent_log), the local mining account, and
the market signer with the mining key of unattended rigs (mining_key).

Other packages use these public names, never the modules inside (import-linter checks it).
wallet/'s errors are re-exported for ui/, which imports app/ only.
"""

from app.account.history import CSV_COLUMNS, HistoryFilter, HistoryRow, export_csv, filter_rows, rows_to_csv
from app.account.mining_account import local_mining_account
from app.account.mining_key import (FILE_RISK, LOW_GAS_WEI, KeyChange, MarketSigner, MiningKeyStatus, NoMarketSigner,
                                    create_mining_key, fund_mining_key, market_signer, mining_key_status,
                                    revoke_mining_key, rotate_mining_key, withdraw_unlocked_stakes)
from app.account.service import Balances, WalletService
from app.account.session import (KeystoreError, Locked, NetworkChoice, RpcUnavailable, SendQuote, SendResult,
                                 WalletError, WalletSession, WalletSnapshot, network_choices)

__all__ = ["CSV_COLUMNS", "Balances", "HistoryFilter", "HistoryRow", "KeystoreError", "Locked", "NetworkChoice",
           "RpcUnavailable", "SendQuote", "SendResult", "WalletError", "WalletService", "WalletSession",
           "WalletSnapshot", "export_csv", "filter_rows", "local_mining_account", "network_choices", "rows_to_csv",
           # the mining key (app.account.mining_key)
           "FILE_RISK", "LOW_GAS_WEI", "KeyChange", "MarketSigner", "MiningKeyStatus", "NoMarketSigner", "create_mining_key",
           "fund_mining_key", "market_signer", "mining_key_status", "revoke_mining_key", "rotate_mining_key",
           "withdraw_unlocked_stakes"]
