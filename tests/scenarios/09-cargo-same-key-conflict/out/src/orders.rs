// lib for orders
