//! Model-driven codecs between each wire protocol and the protocol-neutral document. (SKELETON)
