"""Trade documents exchanged in a conversation (quotes and requests for quotation): pure models,
no Socket.IO or Redis."""
