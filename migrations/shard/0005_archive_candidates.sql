-- The archive job (DESIGN.md, failure mode 8) pages through finished orders by
-- their last change; the partial index holds only those.
CREATE INDEX orders_final_by_change ON orders (updated_at_ms, id) WHERE status IN ('completed', 'cancelled');
