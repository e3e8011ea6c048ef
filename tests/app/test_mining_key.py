"""The mining key on the real embedded chain: made and funded by the main wallet, it signs
for a rig whose main wallet is locked (paying the main address); rotating sweeps the old
key's ETH back and starts withdrawing its stake; revoking leaves no signer while locked."""

from __future__ import annotations

import pytest

from app.account import (NoMarketSigner, WalletService, create_mining_key, market_signer, mining_key_status,
                         revoke_mining_key, rotate_mining_key)
from app.context import AppContext
from wallet.keystore import Keystore
from wallet.mining_keys import MiningKeys

NTK = 10**18


def _svc(ctx, ks, password: str | None = "pw-12345678"):
    return WalletService(ctx, keystore=ks, passwords=[lambda a: password] if password else [])


def test_mining_key_signs_while_the_wallet_is_locked_and_rotation_and_revocation_clean_up():
    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    main = ks.create("pw-12345678")
    with _svc(ctx, ks) as svc:
        svc.deployment()  # the local chain: contracts and the faucet
        ch = create_mining_key(svc, storage="file", stake_wei=5 * NTK)
        key = ch.key
        assert key.payout == main and not ch.left
        assert svc.chain.balance_wei(key.address) == 10 * 10**18
        st = mining_key_status(svc)
        assert st.active == key and not st.low_gas and st.stakes[0].active_wei == 5 * NTK
        assert "anyone who can read your files" in st.storage_note

    with _svc(ctx, ks, None) as locked:  # after a reboot: nobody typed the password
        assert not locked.is_unlocked()
        s = market_signer(locked)
        assert (s.source, s.address, s.payout) == ("mining-key", key.address, main)

    with _svc(ctx, ks) as svc:
        main_before = svc.chain.balance_wei(main)
        ch = rotate_mining_key(svc, storage="file")
        assert ch.old.address == key.address and ch.key.address != key.address and not ch.left
        assert svc.chain.balance_wei(key.address) < 10**15  # swept back: only dust left
        assert main_before - svc.chain.balance_wei(main) < 10**16  # funded the new key with what the old gave back
        stakes = {s.address: s for s in mining_key_status(svc).stakes}
        assert stakes[key.address].withdrawing_wei == 5 * NTK and stakes[key.address].active_wei == 0
        new = ch.key
        revoke_mining_key(svc)
        assert not MiningKeys(ctx.paths.data_dir).secret_path(new.address).exists()

    with _svc(ctx, ks, None) as locked:
        with pytest.raises(NoMarketSigner) as ei:
            market_signer(locked)
        assert "locked" in ei.value.reason and "mining key" in ei.value.fix
