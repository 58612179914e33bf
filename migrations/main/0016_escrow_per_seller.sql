-- Escrow per seller (issue 14): every payment used to credit one 'escrow' account,
-- so on PostgreSQL all payments queued on its row lock. Payments now credit
-- 'escrow:<seller id>' and remember which account holds their money, so a refund
-- or a release debits the same one. Payments made before this keep 'escrow'.
ALTER TABLE payments ADD COLUMN escrow_account TEXT NOT NULL DEFAULT 'escrow';
