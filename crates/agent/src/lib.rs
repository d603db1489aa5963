//! The opsloop managed-node agent (`opsloop agent`).
